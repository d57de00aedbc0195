"""Settings: one declaration per setting, environment overrides, the data directory.

``SETTINGS`` declares every ``sagenb.*`` setting once (key, typed default, kind,
admin-editable or not, app or worker-host scope, the README's line of help);
``prepare()`` turns the ``.ini`` strings into typed values once, so the rest of the
package reads ``settings['sagenb.mail.port']`` as an int.  Every ``sagenb.*`` setting
can be overridden from the environment: ``sagenb.foo.bar_baz`` is read from
``SAGENB_FOO_BAR_BAZ``.  Secrets (the session secret, LDAP and OAuth passwords) belong
there, never in the ``.ini`` files.
"""
import os
import secrets
from dataclasses import dataclass
from typing import Any

from pyramid.settings import asbool

from . import cpus


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and what to do."""


class Kind:
    """How a setting's text (``.ini``, environment, database) becomes its value."""
    name = 'str'

    def parse(self, key, raw, default):
        return '' if raw is None else str(raw)

    def text(self, value):
        return '' if value is None else str(value)


class Bool(Kind):
    name = 'bool'

    def parse(self, key, raw, default):
        return asbool(raw)  # as before: any other word is false

    def text(self, value):
        return 'true' if value else 'false'


class Number(Kind):
    kind = float

    def parse(self, key, raw, default):
        if isinstance(raw, str):
            raw = raw.strip()
            if not raw:  # an empty line in the .ini: the default
                return default
        if isinstance(raw, bool):
            raw = int(raw)
        try:
            return self.kind(raw)
        except (TypeError, ValueError):
            raise SettingsError('%s is a number, not %r' % (key, raw)) from None

    def text(self, value):
        if value is None:
            return ''
        return str(int(value)) if float(value).is_integer() else repr(value)


class Int(Number):
    name = 'int'
    kind = int


class Float(Number):
    name = 'float'
    kind = float


class AutoInt(Int):
    """A number or ``auto`` (None: decided at start)."""
    name = 'auto-int'

    def parse(self, key, raw, default):
        if raw is None or str(raw).strip() == 'auto':
            return None
        return super().parse(key, raw, default)

    def text(self, value):
        return 'auto' if value is None else super().text(value)


class Choice(Kind):
    name = 'choice'

    def __init__(self, *choices):
        self.choices = choices

    def parse(self, key, raw, default):
        value = ('' if raw is None else str(raw)).strip()
        if not value:  # an empty line in the .ini: the default
            return default
        if value not in self.choices:
            quoted = ['"%s"' % choice for choice in self.choices]
            raise SettingsError('%s is %s or %s, not %r'
                                % (key, ', '.join(quoted[:-1]), quoted[-1], value))
        return value


STR, BOOL, INT, FLOAT = Kind(), Bool(), Int(), Float()


@dataclass(frozen=True)
class Setting:
    """One ``sagenb.*`` setting: its key, typed default, kind and one line of help (the
    README's table says the same to users).  ``editable``: admins may change it in the
    browser (server_settings.py); ``scope``: ``app`` (each app server reads it) or
    ``host`` (each worker host reads it, the admin's value too); ``secret``: from the
    environment (``SAGENB_*``), never written in an ``.ini``; ``internal``: not for
    users (the README's table leaves it out)."""
    key: str
    default: Any
    kind: Kind
    help: str
    editable: bool = False
    scope: str = 'app'
    secret: bool = False
    internal: bool = False

    def parse(self, raw):
        """The typed value of ``raw`` (a string from a file, the environment or the
        database, or a value already typed); SettingsError names the setting."""
        return self.kind.parse(self.key, raw, self.default)

    def text(self, value):
        """``value`` written as the ``.ini`` (and the database) write it."""
        return self.kind.text(value)

    @property
    def attribute(self):
        """The name of its value on the object that holds it (``max_per_user``)."""
        return self.key.rsplit('.', 1)[1]


def _declare(*settings):
    return {s.key: s for s in settings}


S = Setting
SETTINGS = _declare(
    # Sign-up and accounts.
    S('sagenb.allow_signup', False, BOOL, 'Anyone may sign up', editable=True),
    S('sagenb.signup.captcha', 'builtin',
      Choice('builtin', 'recaptcha', 'hcaptcha', 'turnstile', 'none'),
      'Challenge at sign-up', editable=True),
    S('sagenb.signup.require_email_confirmation', False, BOOL,
      'New accounts must confirm their e-mail', editable=True),
    S('sagenb.signup.captcha_site_key', '', STR, 'site key of the hosted captcha'),
    S('sagenb.signup.captcha_secret', '', STR, 'the hosted captcha\'s secret key',
      secret=True),
    S('sagenb.signup.captcha_verify_url', '', STR,
      'where the hosted captcha\'s answer is checked (empty: the provider\'s own)'),
    S('sagenb.signup.captcha_timeout', 10.0, FLOAT, 'seconds to wait for the verify URL'),
    # Outgoing mail over SMTP (empty host: no mail; reset and confirmation unavailable).
    S('sagenb.mail.host', '', STR, 'SMTP server for mails (empty: no mail)'),
    S('sagenb.mail.port', 25, INT, 'its port'),
    S('sagenb.mail.sender', 'notebook@localhost', STR, 'the From address'),
    S('sagenb.mail.username', '', STR, 'SMTP login (empty: none)'),
    S('sagenb.mail.password', '', STR, 'SMTP password', secret=True),
    S('sagenb.mail.tls', False, BOOL, 'STARTTLS'),
    S('sagenb.mail.ssl', False, BOOL, 'SMTP over TLS (port 465)'),
    # Required where sagenb.require_public_url is true (production.ini); if empty
    # otherwise, mail links go to http://localhost:<the port this server listens on>.
    S('sagenb.public_url', '', STR,
      'the address people open the notebook at: every link in a mail starts with it'),
    S('sagenb.require_public_url', False, BOOL,
      'refuse to start without sagenb.public_url (production.ini)', internal=True),
    S('sagenb.secret', '', STR, 'session signing secret (development: generated)',
      secret=True),
    S('sagenb.require_secret', False, BOOL,
      'refuse to start without SAGENB_SECRET (production.ini)', internal=True),
    S('sagenb.zodb_uri', '', STR, 'the database (empty: a FileStorage in data_dir)'),
    S('sagenb.account.reset_link_max_age', 3600, INT,
      'seconds a password reset link works'),
    S('sagenb.account.confirm_link_max_age', 2 * 24 * 3600, INT,
      'seconds an e-mail confirmation link works'),
    # Failed logins: free attempts per login name and per client address, then a delay
    # doubling from base_delay up to max_delay; forgotten after forget_after seconds.
    S('sagenb.login.free_attempts', 5.0, FLOAT, 'failed logins for one username'),
    S('sagenb.login.free_attempts_per_address', 20.0, FLOAT,
      'failed logins from one client address'),
    S('sagenb.login.base_delay', 2.0, FLOAT, 'first lock in seconds'),
    S('sagenb.login.max_delay', 900.0, FLOAT, 'longest lock in seconds'),
    S('sagenb.login.forget_after', 3600.0, FLOAT,
      'seconds after the last failure when the count starts again'),
    # OAuth / OpenID Connect log-in (auth/oauth.py): per provider sagenb.oauth.<name>.*
    # (read there: the names are the admin's); the client secret only from the
    # environment: SAGENB_OAUTH_<NAME>_CLIENT_SECRET.
    S('sagenb.oauth.providers', '', STR, 'OAuth / OpenID Connect log-in buttons, by name'),
    S('sagenb.oauth.timeout', 10.0, FLOAT, 'seconds to wait for the identity provider'),
    S('sagenb.secure_cookies', False, BOOL, 'session cookie only over HTTPS'),
    # false: a database with pending evolve steps (evolve.py) stops the server, which
    # names the command to run; true (development.ini): they run at start.
    S('sagenb.evolve_at_start', False, BOOL, 'run pending evolve steps at start'),
    # Sage's HTML manuals at /doc/ (services/doc.py; docs/doc.md says which packages).
    S('sagenb.doc.path', '', STR,
      'the folder of Sage\'s HTML manuals (empty: the installed package\'s, '
      '<venv>/share/doc/sage/html or /usr/share/doc/sagemath/html)'),
    S('sagenb.usercontent_url', '', STR,
      'another origin of this notebook from which HTML outputs are drawn (csp.py)'),
    # Sharing (services/sharing.py): whom the share dialog's type-ahead shows.
    S('sagenb.sharing.visibility', 'members', Choice('members', 'all'),
      'Who people see when sharing: members (their own groups, users by exact login) '
      'or all (every user and group)', editable=True),
    S('sagenb.session_max_age', 14 * 24 * 3600, INT, 'seconds a login lasts'),
    S('sagenb.typeset_default', True, BOOL, 'new worksheets show typeset math'),
    # Checked by cpus.check in prepare(), applied by the server runner (server.py).
    S('sagenb.server_cpus', 'auto', STR,
      'CPUs of an app server\'s threads: auto | none | "2" | "2,3"'),
    # Evaluation (workers/config.py reads these into a WorkerConfig).
    S('sagenb.workers.mode', 'fork', Choice('fork', 'spawn'),
      'fork: kernels forked by a warmed fork server; spawn: fresh kernel processes',
      scope='host'),
    S('sagenb.workers.kernel', 'sagemath', STR, 'the Jupyter kernel of the spawn mode',
      scope='host'),
    S('sagenb.workers.network', True, BOOL,
      'false: Sage processes get an empty network namespace', scope='host'),
    # workers/config.parse_uids reads the list.
    S('sagenb.workers.uids', '', STR, 'unprivileged uids for Sage processes',
      scope='host'),
    S('sagenb.workers.require_uids_as_root', False, BOOL,
      'started as root without uids, refuse to start', scope='host'),
    S('sagenb.workers.limit.address_space', float(8 * 1024 ** 3), FLOAT,
      'bytes of memory per Sage process (0: none)', scope='host'),
    S('sagenb.workers.limit.cpu_seconds', float(4 * 3600), FLOAT,
      'CPU seconds per Sage process (0: none)', scope='host'),
    S('sagenb.workers.limit.processes', 512.0, FLOAT,
      'processes and threads per worker uid (0: none)', scope='host'),
    S('sagenb.workers.limit.open_files', 1024.0, FLOAT,
      'open files per Sage process (0: none)', scope='host'),
    S('sagenb.workers.limit.file_size', float(1024 ** 3), FLOAT,
      'largest file a Sage process may write (0: none)', scope='host'),
    # Running worksheet processes per owner (each app server places worksheets); before
    # idle_timeout: the admin page lists the editable settings in this order.
    S('sagenb.workers.max_per_user', 25, INT, 'Running worksheet processes per user',
      editable=True),
    S('sagenb.workers.idle_timeout', 3600.0, FLOAT,
      'Seconds before an idle process stops', editable=True, scope='host'),
    S('sagenb.workers.startup_timeout', 120.0, FLOAT,
      'seconds a Sage process has to start', scope='host'),
    S('sagenb.workers.spare', 1, INT, 'Sage processes started ahead of demand',
      scope='host'),
    S('sagenb.workers.spare_max', 8, INT,
      'spares at most while new worksheets arrive quickly', scope='host'),
    S('sagenb.workers.prestart', True, BOOL, 'warm the fork server at start',
      scope='host'),
    S('sagenb.workers.interrupt_timeout', 3.0, FLOAT,
      'seconds a cell has to stop after an interrupt before its process restarts',
      scope='host'),
    # Running worksheet processes on a host in all (None: auto, what memory and open
    # files allow, workers/capacity.py).
    S('sagenb.workers.max_total', None, AutoInt(),
      'running worksheet processes on this worker host (auto: what it can hold)',
      scope='host'),
    S('sagenb.workers.flush_interval', 0.2, FLOAT,
      'seconds between stores of a running cell\'s output', scope='host',
      internal=True),
    # Worker hosts (workers/hosts.py, workers/hostapi.py).
    S('sagenb.workers.server_name', 'local', STR,
      'this worker host\'s name, unique among the hosts sharing a database', scope='host'),
    S('sagenb.workers.embedded', True, BOOL, 'this app server runs a worker host'),
    S('sagenb.workers.listen', 'auto', STR,
      'HOST:PORT where app servers reach this worker host (auto, or empty: nowhere)',
      scope='host'),
    S('sagenb.workers.advertise', '', STR,
      'the address app servers use (default: listen\'s)', scope='host'),
    S('sagenb.workers.secret', '', STR,
      'key signing requests to worker hosts (default: derived from the session secret)',
      secret=True),
    # A host cut off by the network answers nothing: connecting gives up after this
    # (workers/hosts.py RemoteHost), and the request says the host cannot be reached.
    S('sagenb.workers.connect_timeout', 5.0, FLOAT,
      'seconds an app server tries to connect to a worker host'),
    S('sagenb.workers.heartbeat', 10.0, FLOAT,
      'seconds between a host\'s "alive" records', scope='host'),
    # Stream text kept per cell (as sagenb: 32,000); the whole text goes to a file.
    S('sagenb.output.max_chars', 32000, INT, 'output text kept per cell', scope='host'),
    S('sagenb.output.max_file_bytes', 64 * 1024 ** 2, INT,
      'largest whole output text kept as a file', scope='host', internal=True),
    S('sagenb.api.max_wait', 60.0, FLOAT, 'longest wait of an API evaluate or poll'),
    S('sagenb.poll_hold', 5.0, FLOAT, 'longest hold of the page\'s own polls'),
    # A page holds at most 2 polls and an evaluation's 2 s wait (waits.py).
    S('sagenb.api.max_waits_per_user', 8, INT,
      'requests of one user that may wait at once on an app server'),
    S('sagenb.introspect_timeout', 5.0, FLOAT,
      'seconds a completion or introspection request waits while cells run'),
    # Uploads of worksheets (importing.py).
    S('sagenb.import.max_mb', 64, INT, 'largest upload'),
    S('sagenb.import.max_unpacked_mb', 256, INT, 'what one upload unpacks to'),
    S('sagenb.import.max_members', 5000, INT, 'members of one archive'),
    S('sagenb.import.max_worksheets', 500, INT, 'worksheets of one .zip'),
    S('sagenb.import.max_concurrent', 2, INT, 'imports unpacking at once'),
    S('sagenb.import.max_concurrent_per_user', 1, INT,
      'imports of one user unpacking at once'),
    S('sagenb.data.max_mb', 64, INT, 'largest data file of a worksheet'),
    S('sagenb.quota.user_mb', 1024.0, FLOAT, 'storage of one user (0: no quota)'),
    # Worksheet history (services/history.py): automatic revisions and their thinning.
    S('sagenb.history.interval', 60.0, FLOAT,
      'seconds between two automatic revisions of one editor (0: none)'),
    S('sagenb.history.keep_all_hours', 24.0, FLOAT,
      'revisions younger than this are all kept'),
    S('sagenb.history.hourly_days', 30.0, FLOAT,
      'then one an hour is kept up to this age, then one a day'),
    # Published worksheets (/pub/, services/publishing.py): told not to be indexed by
    # default, since students' work is published to share a link, not to be found.
    S('sagenb.publish.noindex', True, BOOL,
      'ask search engines not to index published worksheets'),
    # Seeing it run (metrics.py, views/system.py): /metrics for admins or a scraper
    # with this token (empty: admins only), /health 503 below this much free disk.
    S('sagenb.metrics.token', '', STR,
      'bearer token a Prometheus scraper sends for /metrics (empty: admins only)',
      secret=True),
    S('sagenb.health.min_free_mb', 200, INT,
      'free disk under data_dir below which /health answers 503'),
    # download.pdf (formats/latex.py): TeX is not a dependency; without it the route
    # answers 404 saying so, and download.tex is the way.
    S('sagenb.export.pdflatex', '', STR,
      'pdflatex for download.pdf (a name on PATH or a path; empty: pdflatex)'),
    S('sagenb.export.pdflatex_timeout', 60, INT, 'seconds one pdflatex run may take'),
    # LDAP login (auth/ldap.py); an empty uri turns it off.
    S('sagenb.ldap.uri', '', STR, 'directory for logins (empty: LDAP off)'),
    S('sagenb.ldap.start_tls', False, BOOL, 'StartTLS on an ldap:// connection'),
    S('sagenb.ldap.ca_file', '', STR, 'PEM file of the directory\'s CA(s)'),
    S('sagenb.ldap.bind_dn', '', STR, 'the service account (empty: anonymous)'),
    S('sagenb.ldap.bind_password', '', STR, 'the service account\'s password',
      secret=True),
    S('sagenb.ldap.base_dn', '', STR, 'where users are searched'),
    S('sagenb.ldap.username_attribute', 'uid', STR, 'attribute matched with the login'),
    S('sagenb.ldap.timeout', 10.0, FLOAT, 'seconds to connect and for each answer'),
    S('sagenb.ldap.group_base_dn', '', STR, 'where groups are searched (empty: base_dn)'),
    # {dn}: the user's DN, {username}: the value of username_attribute (both escaped).
    S('sagenb.ldap.group_filter',
      '(|(member={dn})(uniqueMember={dn})(memberUid={username}))', STR,
      'groups of a user'),
    S('sagenb.ldap.admin_groups', '', STR, 'groups whose members are admins'),
    S('sagenb.ldap.allowed_groups', '', STR, 'groups whose members may log in'),
)
del S

# The ``.ini`` form of every default (what ``[app:main]`` would say).
DEFAULTS = {key: s.text(s.default) for key, s in SETTINGS.items()}


def convert(settings):
    """Every declared setting in ``settings`` as its typed value, in place (a value
    already typed stays as it is); SettingsError names a wrong one."""
    for key, setting in SETTINGS.items():
        if key in settings:
            settings[key] = setting.parse(settings[key])
    return settings


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
    if asbool(settings.get('sagenb.require_secret')):
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
        if asbool(settings.get('sagenb.require_public_url')):
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
    defaults and environment applied, every declared setting typed (``SETTINGS``),
    ``data_dir`` made, the database URI resolved."""
    apply_environment(settings)
    convert(settings)  # the rest of the package reads typed values
    try:  # applied by the server runner (server.py), checked before anything starts
        cpus.check(settings['sagenb.server_cpus'])
    except cpus.CpuSettingError as exc:
        raise SettingsError('sagenb.server_cpus: %s' % exc) from None
    resolve_data_dir(global_config, settings)
    settings['zodbconn.uri'] = zodb_uri(settings)
    return settings
