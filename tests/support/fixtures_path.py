"""Where the shared test fixtures live (real worksheets and notebooks, read-only).

``$SAGENB_FIXTURES`` when set, else ``<repository>/../shared/fixtures``.  Tests that
need the folder should fail, not skip, when it is missing.
"""
import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def fixtures_dir():
    configured = os.environ.get('SAGENB_FIXTURES')
    if configured:
        return Path(configured).expanduser()
    return REPOSITORY.parent / 'shared' / 'fixtures'


# A parametrized test over the fixtures gets this one name when the folder is missing, so
# that it fails with a clear message instead of being skipped for want of parameters.
MISSING = '<no fixtures folder>'


def fixture_names(kind, pattern):
    folder = fixtures_dir() / kind
    names = sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []
    return names or [MISSING]


def fixture_path(kind, name):
    """The fixture file, or a failed test that says how to provide the folder."""
    import pytest
    path = fixtures_dir() / kind / name
    if name == MISSING or not path.is_file():
        pytest.fail('the shared fixture %s is missing: set SAGENB_FIXTURES to the folder '
                    'holding sws/, ipynb/ and sagenb-directory/ (by default '
                    '<repository>/../shared/fixtures)' % path)
    return path
