"""The settings' declarations (settings.py SETTINGS): every setting has a default of its
kind, every ``sagenb.*`` key the package reads is declared, the README's table names
every one meant for users, and ``prepare()`` types them once."""
import ast
import os
import re

import pytest

import sagenb_pyramid
from sagenb_pyramid import server_settings
from sagenb_pyramid.security import REQUEST_KEYS
from sagenb_pyramid.settings import (
    DEFAULTS, SETTINGS, AutoInt, Bool, Choice, Float, Int, SettingsError, env_name, prepare)

PACKAGE = os.path.dirname(sagenb_pyramid.__file__)
README = os.path.join(os.path.dirname(PACKAGE), 'README.md')
KEY = re.compile(r'^sagenb\.[a-z0-9_.]+$')


def test_every_setting_has_a_default_of_its_kind():
    for key, setting in SETTINGS.items():
        kind, default = setting.kind, setting.default
        if isinstance(kind, Bool):
            assert type(default) is bool, key
        elif isinstance(kind, AutoInt):
            assert default is None or type(default) is int, key
        elif isinstance(kind, Int):
            assert type(default) is int, key
        elif isinstance(kind, Float):
            assert type(default) is float, key
        elif isinstance(kind, Choice):
            assert default in kind.choices, key
        else:
            assert type(default) is str, key
        assert setting.scope in ('app', 'host'), key
        # The .ini form of the default reads back as the default.
        assert setting.parse(DEFAULTS[key]) == default, key
        assert setting.parse(default) == default, key


def package_keys():
    """``{key: [file:line]}`` of the ``sagenb.*`` string constants of the package that
    are settings keys (not keys of ``request.environ``)."""
    found = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if not name.endswith('.py'):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            environ_keys = set()
            for node in ast.walk(tree):
                # request.environ['sagenb.x'], request.environ.get('sagenb.x', ...)
                if isinstance(node, ast.Subscript) and 'environ' in ast.unparse(node.value):
                    environ_keys.add(id(node.slice))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and 'environ' in ast.unparse(node.func.value) and node.args:
                    environ_keys.add(id(node.args[0]))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and KEY.match(node.value) and id(node) not in environ_keys \
                        and node.value not in REQUEST_KEYS:
                    found.setdefault(node.value, []).append(
                        '%s:%d' % (os.path.relpath(path, PACKAGE), node.lineno))
    return found


def test_every_key_the_package_reads_is_declared():
    keys = package_keys()
    assert 'sagenb.mail.port' in keys and 'sagenb.workers.limit.' in keys  # the scan works
    undeclared = {}
    for key, places in keys.items():
        if key.endswith('.'):  # a prefix completed in the code: some setting has it
            if not any(k.startswith(key) for k in SETTINGS):
                undeclared[key] = places
        elif key not in SETTINGS:
            undeclared[key] = places
    assert not undeclared, 'declare these in settings.py SETTINGS: %s' % undeclared


def test_the_readme_table_names_every_setting_for_users():
    named = set()
    with open(README) as f:
        for row in (line for line in f if line.startswith('| `')):
            names = re.findall(r'`([A-Za-z0-9_.]+)`', row)
            named.update(names)
            # `sagenb.import.max_mb` ... `max_members`: a short name in the same row
            prefixes = {n.rsplit('.', 1)[0] for n in names if n.startswith('sagenb.')}
            named.update('%s.%s' % (p, n) for p in prefixes for n in names if '.' not in n)
    missing = [key for key, s in SETTINGS.items()
               if not s.internal and key not in named and env_name(key) not in named]
    assert not missing, 'add these to the configuration table of README.md: %s' % missing


def test_editable_settings_are_declared_once():
    assert list(server_settings.EDITABLE) == [
        'sagenb.allow_signup', 'sagenb.signup.captcha',
        'sagenb.signup.require_email_confirmation', 'sagenb.sharing.visibility',
        'sagenb.workers.max_per_user',
        'sagenb.workers.idle_timeout']
    assert server_settings.WORKER_SCOPES == {'idle_timeout': 'host', 'max_per_user': 'app'}


def test_prepare_types_the_settings_once(tmp_path, monkeypatch):
    monkeypatch.setenv('SAGENB_MAIL_PORT', '2525')
    monkeypatch.setenv('SAGENB_WORKERS_PRESTART', 'false')
    settings = prepare({}, {'data_dir': str(tmp_path), 'sagenb.allow_signup': 'true',
                            'sagenb.workers.max_total': '12',
                            'sagenb.quota.user_mb': '0.5'})
    assert settings['sagenb.mail.port'] == 2525  # the environment wins, typed
    assert settings['sagenb.workers.prestart'] is False
    assert settings['sagenb.allow_signup'] is True
    assert settings['sagenb.workers.max_total'] == 12
    assert settings['sagenb.quota.user_mb'] == 0.5
    assert settings['sagenb.workers.idle_timeout'] == 3600.0
    assert settings['sagenb.ldap.group_filter'] == DEFAULTS['sagenb.ldap.group_filter']
    assert prepare({}, dict(settings)) == settings  # typed values stay as they are


@pytest.mark.parametrize('key, value, message', [
    ('sagenb.mail.port', 'twenty-five', 'sagenb.mail.port is a number'),
    ('sagenb.signup.captcha', 'riddle', 'sagenb.signup.captcha is "builtin"'),
])
def test_a_wrong_setting_is_named_at_start(tmp_path, key, value, message):
    with pytest.raises(SettingsError, match=message):
        prepare({}, {'data_dir': str(tmp_path), key: value})
