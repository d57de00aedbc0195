"""Server settings that admins change from the browser.

Which ones they are is declared with the settings themselves (``editable=True`` in
settings.py ``SETTINGS``).  Their first values come from the ``.ini`` (and ``SAGENB_*``
environment overrides); once an admin saves one, the value stored in the database
(``root.server_settings``, as text) wins, on every app server.
"""
import logging

from .settings import SETTINGS, SettingsError

log = logging.getLogger(__name__)

# key -> Setting, in the order of settings.py (the admin page's order).
EDITABLE = {key: s for key, s in SETTINGS.items() if s.editable}
# attribute -> scope of the editable worker settings (workers/hosts.py applies them).
WORKER_SCOPES = {s.attribute: s.scope for key, s in EDITABLE.items()
                 if key.startswith('sagenb.workers.')}


def typed(key, text):
    """The stored text of an editable setting as its typed value (None if unreadable)."""
    try:
        return EDITABLE[key].parse(text)
    except SettingsError:
        log.warning('ignoring the stored setting %s = %r', key, text)
        return None


def get(request, key, root=None):
    """The setting's typed value: the database's if an admin set it, else the
    ``.ini``/environment value."""
    root = root if root is not None else request.root
    values = root.server_settings
    if key in values:
        value = typed(key, values[key])
        if value is not None:
            return value
    return request.registry.settings.get(key)


def set_value(root, key, value):
    if key not in EDITABLE:
        raise KeyError(key)
    root.server_settings[key] = EDITABLE[key].text(EDITABLE[key].parse(value))


def stored(values, scope):
    """``{attribute: typed value}`` of the editable ``sagenb.workers.*`` settings of
    ``scope`` (``app``: each app server's, ``host``: each worker host's) that the stored
    server settings ``values`` hold."""
    found = {}
    for key, setting in EDITABLE.items():
        if key in values and setting.scope == scope and key.startswith('sagenb.workers.'):
            value = typed(key, values[key])
            if value is not None:
                found[setting.attribute] = value
    return found
