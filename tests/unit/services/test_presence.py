"""The colours of presence markers (services/presence.py): one per user, the same on
every app server, readable (white text on each), spread over the palette."""
import os
import re
import subprocess
import sys

from sagenb_pyramid.services import presence


def luminance(color):
    def channel(value):
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_white_text_on_every_colour_passes_wcag_aa():
    assert len(set(presence.PALETTE)) == len(presence.PALETTE) >= 8
    for color in presence.PALETTE:
        assert re.fullmatch(r'#[0-9a-f]{6}', color)
        contrast = 1.05 / (luminance(color) + 0.05)
        assert contrast >= 4.5, (color, contrast)


def test_a_users_colour_is_stable_across_processes_and_logins_spread():
    logins = ['user%d' % i for i in range(200)]
    here = [presence.color_of(login) for login in logins]
    # Another interpreter (another app server; str hashes are salted per process).
    code = ('from sagenb_pyramid.services import presence\n'
            'print(" ".join(presence.color_of("user%d" % i) for i in range(200)))')
    there = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           check=True, env={**os.environ, 'PYTHONHASHSEED': 'random'}).stdout.split()
    assert here == there
    assert len(set(here)) == len(presence.PALETTE)
    assert presence.color_of('ünïcødé') in presence.PALETTE
