"""Settings: defaults, environment overrides, and the data directory.

Every ``sagenb.*`` setting can be overridden from the environment: ``sagenb.foo.bar_baz``
is read from ``SAGENB_FOO_BAR_BAZ``.  Secrets (the session secret, LDAP and OAuth
passwords) belong there, never in the ``.ini`` files.
"""
import os
import secrets

from pyramid.settings import asbool

from . import cpus


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and what to do."""


DEFAULTS = {
    'sagenb.allow_signup': 'false',
    # Sign-up (these three are admin-editable: server_settings.get).
    # builtin | recaptcha | hcaptcha | turnstile | none
    'sagenb.signup.captcha': 'builtin',
    'sagenb.signup.require_email_confirmation': 'false',
    # Hosted captcha: the site key, the secret (env SAGENB_SIGNUP_CAPTCHA_SECRET only),
    # the verify URL (empty: the provider's own), seconds to wait for it.
    'sagenb.signup.captcha_site_key': '',
    'sagenb.signup.captcha_secret': '',
    'sagenb.signup.captcha_verify_url': '',
    'sagenb.signup.captcha_timeout': '10',
    # Outgoing mail over SMTP (empty host: no mail; reset and confirmation unavailable).
    'sagenb.mail.host': '',
    'sagenb.mail.port': '25',
    'sagenb.mail.sender': 'notebook@localhost',
    'sagenb.mail.username': '',
    'sagenb.mail.password': '',  # env SAGENB_MAIL_PASSWORD only
    'sagenb.mail.tls': 'false',  # STARTTLS
    'sagenb.mail.ssl': 'false',  # SMTP over TLS (port 465)
    # The address people open the notebook at (https://notebook.example.org, or with a
    # path prefix): every link in a mail starts with it, never with the request's Host.
    # Required where sagenb.require_public_url is true (production.ini); if empty
    # otherwise, mail links go to http://localhost:<the port this server listens on>.
    'sagenb.public_url': '',
    # Seconds a link sent by mail works: password reset, e-mail confirmation.
    'sagenb.account.reset_link_max_age': '3600',
    'sagenb.account.confirm_link_max_age': str(2 * 24 * 3600),
    # Failed logins: free attempts per login name and per client address, then a delay
    # doubling from base_delay up to max_delay; forgotten after forget_after seconds.
    'sagenb.login.free_attempts': '5',
    'sagenb.login.free_attempts_per_address': '20',
    'sagenb.login.base_delay': '2',
    'sagenb.login.max_delay': '900',
    'sagenb.login.forget_after': '3600',
    # OAuth / OpenID Connect log-in (auth/oauth.py): the providers' names, e.g.
    # "oidc github google"; per provider sagenb.oauth.<name>.type (oidc|github|google),
    # client_id, discovery_url, scope, username_claim, groups_claim, admin_groups,
    # allowed_groups, label, GitHub's domain; the client secret only from the
    # environment: SAGENB_OAUTH_<NAME>_CLIENT_SECRET.
    'sagenb.oauth.providers': '',
    'sagenb.oauth.timeout': '10',
    'sagenb.secure_cookies': 'false',
    # A database with pending evolve steps (evolve.py): false, the server refuses to
    # start and names the command to run (sagenb-admin CONFIG evolve); true, it runs
    # them at start (development.ini).
    'sagenb.evolve_at_start': 'false',
    # Another origin serving this notebook (e.g. https://usercontent.example.org) from
    # which the frames of HTML outputs are loaded (csp.py); empty: the notebook's own.
    'sagenb.usercontent_url': '',
    'sagenb.session_max_age': str(14 * 24 * 3600),
    'sagenb.typeset_default': 'true',
    # The CPUs of a served app server's threads (cpus.py): auto | none | "2" | "2,3".
    'sagenb.server_cpus': 'auto',
    # Evaluation.
    # fork: kernels forked by a warmed fork server; spawn: fresh kernel processes.
    'sagenb.workers.mode': 'fork',
    'sagenb.workers.kernel': 'sagemath',
    # false: Sage processes get an empty network namespace (fork mode, server as root).
    'sagenb.workers.network': 'true',
    # Unprivileged uids for Sage processes, e.g. 20000-20199 (empty: the server's own).
    'sagenb.workers.uids': '',
    # true (production.ini): a server started as root without uids refuses to start
    # rather than run Sage processes as root; false: it starts with a warning.
    'sagenb.workers.require_uids_as_root': 'false',
    # Operating-system limits of each Sage process (0: none).
    'sagenb.workers.limit.address_space': str(8 * 1024 ** 3),
    'sagenb.workers.limit.cpu_seconds': str(4 * 3600),
    'sagenb.workers.limit.processes': '512',
    'sagenb.workers.limit.open_files': '1024',
    'sagenb.workers.limit.file_size': str(1024 ** 3),
    'sagenb.workers.idle_timeout': '3600',
    'sagenb.workers.startup_timeout': '120',
    'sagenb.workers.spare': '1',
    # Spares at most while new worksheets arrive quickly (a class arriving at once).
    'sagenb.workers.spare_max': '8',
    'sagenb.workers.prestart': 'true',
    # Seconds a cell has to stop after an interrupt before its process is restarted.
    'sagenb.workers.interrupt_timeout': '3',
    # Running worksheet processes: per worksheet owner, and on this server in all (auto:
    # what memory and the limit of open files allow, workers/capacity.py).  A full
    # server stops the process idle longest (no page open) for a new one.
    'sagenb.workers.max_per_user': '25',
    'sagenb.workers.max_total': 'auto',
    'sagenb.workers.flush_interval': '0.2',
    # Worker hosts (workers/hosts.py).  The name of this process's host (unique among
    # the hosts sharing a database); embedded: this app server runs one; listen:
    # HOST:PORT where app servers reach it (auto: 127.0.0.1 on a free port when the
    # database is shared over ZEO, nowhere otherwise; empty: nowhere); advertise: the
    # address other machines use (default: listen's); the secret signing their
    # requests comes from SAGENB_WORKERS_SECRET (default: derived from the session
    # secret, which every app server shares already); heartbeat: seconds between the
    # host's "alive" records (3 missed: its worksheets move, its busy cells are lost).
    'sagenb.workers.server_name': 'local',
    'sagenb.workers.embedded': 'true',
    'sagenb.workers.listen': 'auto',
    'sagenb.workers.advertise': '',
    'sagenb.workers.secret': '',
    'sagenb.workers.heartbeat': '10',
    # Stream text kept per cell (as sagenb: 32,000); the whole text goes to a file.
    'sagenb.output.max_chars': '32000',
    'sagenb.output.max_file_bytes': str(64 * 1024 ** 2),
    # Upper bound of the API's ``wait``; the page's own requests hold at most ``poll_hold``.
    'sagenb.api.max_wait': '60',
    'sagenb.poll_hold': '5',
    # Requests of one user that may wait at once on one app server (waits.py); more get
    # 429 at once.  A page holds at most 2 polls and an evaluation's 2 s wait.
    'sagenb.api.max_waits_per_user': '8',
    # Seconds a completion or introspection request waits while cells run.
    'sagenb.introspect_timeout': '5',
    # Uploads of worksheets (importing.py): the file, what its archives unpack to, the
    # members of one archive, the worksheets of one .zip.
    'sagenb.import.max_mb': '64',
    'sagenb.import.max_unpacked_mb': '256',
    'sagenb.import.max_members': '5000',
    'sagenb.import.max_worksheets': '500',
    # Imports unpacking at once: on this app server, and per user (more wait: 503, 429).
    'sagenb.import.max_concurrent': '2',
    'sagenb.import.max_concurrent_per_user': '1',
    # Largest data file of a worksheet (imported ones and files kept with cells too).
    'sagenb.data.max_mb': '64',
    # Storage of one user: data files and what imports bring (0: no quota).
    'sagenb.quota.user_mb': '1024',
    # LDAP login (sagenb_pyramid/auth/ldap.py); an empty uri turns it off.  The service
    # account's password comes from SAGENB_LDAP_BIND_PASSWORD, never from an .ini file.
    'sagenb.ldap.uri': '',
    'sagenb.ldap.start_tls': 'false',
    'sagenb.ldap.ca_file': '',
    'sagenb.ldap.bind_dn': '',
    'sagenb.ldap.bind_password': '',
    'sagenb.ldap.base_dn': '',
    'sagenb.ldap.username_attribute': 'uid',
    'sagenb.ldap.timeout': '10',
    'sagenb.ldap.group_base_dn': '',
    # {dn}: the user's DN, {username}: the value of username_attribute (both escaped).
    'sagenb.ldap.group_filter':
        '(|(member={dn})(uniqueMember={dn})(memberUid={username}))',
    'sagenb.ldap.admin_groups': '',
    'sagenb.ldap.allowed_groups': '',
}


def env_name(key):
    return key.upper().replace('.', '_')


def apply_environment(settings, environ=os.environ):
    """Fill in defaults, then let ``SAGENB_*`` environment variables win."""
    for key, value in DEFAULTS.items():
        settings.setdefault(key, value)
    for key in list(settings) + ['sagenb.secret', 'sagenb.zodb_uri']:
        if key.startswith('sagenb.') and env_name(key) in environ:
            settings[key] = environ[env_name(key)]
    return settings


def resolve_data_dir(global_config, settings):
    """The folder for everything this notebook writes; created if missing.

    ``pserve development.ini data_dir=/tmp/nb1`` passes ``data_dir`` in the global
    configuration, which wins over the ``[app:main]`` default.
    """
    data_dir = (global_config or {}).get('data_dir') or os.environ.get('SAGENB_DATA_DIR') \
        or settings.get('data_dir')
    if not data_dir:
        raise SettingsError('the setting data_dir is required')
    data_dir = os.path.abspath(os.path.expanduser(data_dir))
    # What the server writes (Data.fs, blobs, secrets, sockets) is for its user only.
    os.umask(0o077)
    os.makedirs(os.path.join(data_dir, 'blobs'), mode=0o700, exist_ok=True)
    os.chmod(os.path.join(data_dir, 'blobs'), 0o700)
    # Workers (other uids) pass through to their own folders under work/, listing nothing.
    os.chmod(data_dir, 0o711)
    settings['data_dir'] = data_dir
    return data_dir


def zodb_uri(settings):
    """``sagenb.zodb_uri`` (or ``SAGENB_ZODB_URI``), else the embedded FileStorage."""
    uri = settings.get('sagenb.zodb_uri') or settings.get('zodbconn.uri')
    if uri:
        return uri
    data_dir = settings['data_dir']
    return ('file://%s/Data.fs?blobstorage_dir=%s/blobs&connection_cache_size=20000'
            % (data_dir, data_dir))


def session_secret(settings):
    """The session signing secret.

    Production must set ``SAGENB_SECRET`` (shared by every app server).  Without it a
    development server keeps a random secret in its data directory, so a restart
    does not log everyone out.
    """
    secret = settings.get('sagenb.secret')
    if secret:
        return secret
    if asbool(settings.get('sagenb.require_secret', 'false')):
        raise SettingsError('set the session secret in the environment: SAGENB_SECRET=...')
    path = os.path.join(settings['data_dir'], 'session-secret')
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # kept from an earlier start, or another process wrote it
        with open(path) as f:
            return f.read().strip()
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, 'w') as f:
        f.write(secret)
    return secret


def public_url(settings):
    """``sagenb.public_url`` checked and without a trailing slash ('' when unset and not
    required)."""
    from urllib.parse import urlsplit
    url = (settings.get('sagenb.public_url') or '').strip().rstrip('/')
    if not url:
        if asbool(settings.get('sagenb.require_public_url', 'false')):
            raise SettingsError(
                'set the address people open the notebook at, which links in mail use: '
                'SAGENB_PUBLIC_URL=https://notebook.example.org')
        return ''
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise SettingsError('sagenb.public_url must be an http(s) address such as '
                            'https://notebook.example.org, not %r' % url)
    return url


def prepare(global_config, settings):
    """The settings of ``[app:main]`` as the application and ``sagenb-worker`` use them:
    defaults and environment applied, ``data_dir`` made, the database URI resolved."""
    apply_environment(settings)
    try:  # applied by the server runner (server.py), checked before anything starts
        cpus.check(settings['sagenb.server_cpus'])
    except cpus.CpuSettingError as exc:
        raise SettingsError('sagenb.server_cpus: %s' % exc) from None
    resolve_data_dir(global_config, settings)
    settings['zodbconn.uri'] = zodb_uri(settings)
    return settings
