"""Server settings that admins change from the browser.

Their first values come from the ``.ini`` (and ``SAGENB_*`` environment overrides);
once an admin saves one, the value stored in the database (``root.server_settings``)
wins, on every app server.  Only the keys in ``EDITABLE`` can be stored.
"""
# key -> (kind, description); kinds: bool, int, choice:<a>|<b>|...
EDITABLE = {
    'sagenb.allow_signup': ('bool', 'Anyone may sign up'),
    'sagenb.signup.captcha': ('choice:builtin|recaptcha|hcaptcha|turnstile|none',
                              'Challenge at sign-up'),
    'sagenb.signup.require_email_confirmation': ('bool',
                                                 'New accounts must confirm their e-mail'),
    'sagenb.workers.max_per_user': ('int', 'Running worksheet processes per user'),
    'sagenb.workers.idle_timeout': ('int', 'Seconds before an idle process stops'),
}


def get(request, key, root=None):
    """The setting's value as a string: the database's if an admin set it, else the
    ``.ini``/environment value."""
    root = root if root is not None else request.root
    values = root.server_settings
    if key in values:
        return values[key]
    return request.registry.settings.get(key)


def set_value(root, key, value):
    if key not in EDITABLE:
        raise KeyError(key)
    root.server_settings[key] = str(value)
