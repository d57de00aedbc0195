"""Ways of proving who one is: local passwords and API tokens today; LDAP and OAuth
(velruse) plug in beside them, each ending in ``login_user``."""
