"""A real OpenLDAP ``slapd`` for the tests, on free 127.0.0.1 ports.

``Slapd(tmp_dir).start()`` writes a ``slapd.conf`` and an mdb database in ``tmp_dir``,
makes a self-signed certificate (``openssl`` CLI) for StartTLS and ldaps://, loads
``DATA`` with ``slapadd`` and starts ``slapd`` in the foreground; ``stop()`` ends it.
Tests change entries with ``modify(ldif)`` (``ldapmodify`` as the root DN).  Missing
``slapd``, ``slapadd``, ``ldapmodify`` or ``openssl`` fails with a message saying what
to install; nothing is skipped.

Directory (``dc=example,dc=org``): people under ``ou=people`` (password of each:
``PASSWORDS``), groups under ``ou=groups`` of all three membership kinds, a service
account ``SERVICE_DN`` that may read everything; anonymous clients can read nothing.
"""
import os
import shutil
import socket
import subprocess
import time

SUFFIX = 'dc=example,dc=org'
ROOT_DN = 'cn=admin,' + SUFFIX
ROOT_PASSWORD = 'root secret'
SERVICE_DN = 'cn=notebook,ou=services,' + SUFFIX
SERVICE_PASSWORD = 'service secret'
PEOPLE = 'ou=people,' + SUFFIX
GROUPS = 'ou=groups,' + SUFFIX

PASSWORDS = {
    'alice': 'alice in ldap',
    'bob': 'bob in ldap',
    'carol': 'carol in ldap',
    'dora': 'dora in ldap',
    'erin': 'erin in ldap',
    'frank': 'frank in ldap',
    '1up': 'oneup in ldap',
    'twin': 'twin in ldap',
    'alice.smith': 'paren in ldap',
}

SLAPD = '/usr/sbin/slapd'
MODULE_PATH = '/usr/lib/ldap'
SCHEMA_DIR = '/etc/ldap/schema'


def person(uid, cn, mail, ou='people', display=None, extra=''):
    sn = cn.split()[-1]
    lines = [
        'dn: uid=%s,ou=%s,%s' % (uid, ou, SUFFIX),
        'objectClass: inetOrgPerson',
        'uid: ' + uid, 'cn: ' + cn, 'sn: ' + sn, 'mail: ' + mail,
        'userPassword: ' + PASSWORDS[uid],
    ]
    if display:
        lines.append('displayName: ' + display)
    return '\n'.join(lines) + extra + '\n'


def people_dn(uid, ou='people'):
    return 'uid=%s,ou=%s,%s' % (uid, ou, SUFFIX)


DATA = '\n'.join([
    f'dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n'
    'o: Example University\n',
    f'dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n',
    f'dn: ou=others,{SUFFIX}\nobjectClass: organizationalUnit\nou: others\n',
    f'dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n',
    f'dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n',
    f'dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n'
    f'cn: notebook\nuserPassword: {SERVICE_PASSWORD}\n',
    person('alice', 'Alice Liddell', 'alice@example.org'),
    person('bob', 'Bob Builder', 'bob@example.org', display='Bob the Builder'),
    person('carol', 'Carol Danvers', 'carol@example.org'),
    person('dora', 'Dora Directory', 'dora@example.org'),
    person('erin', 'Erin Brockovich', 'erin@example.org'),
    person('frank', 'Frank Zappa', 'frank@example.org'),
    person('1up', 'One Up', '1up@example.org'),
    person('twin', 'Twin One', 'twin1@example.org'),
    person('twin', 'Twin Two', 'twin2@example.org', ou='others'),
    person('alice.smith', 'Alice Smith', 'asmith@example.org'),
    # groupOfNames (member: DN)
    f'dn: cn=staff,{GROUPS}\nobjectClass: groupOfNames\ncn: staff\n'
    f'member: {people_dn("alice")}\nmember: {people_dn("erin")}\n',
    f'dn: cn=nbadmins,{GROUPS}\nobjectClass: groupOfNames\ncn: nbadmins\n'
    f'member: {people_dn("alice")}\nmember: {people_dn("erin")}\n',
    # posixGroup (memberUid: uid)
    f'dn: cn=students,{GROUPS}\nobjectClass: posixGroup\ncn: students\ngidNumber: 5000\n'
    'memberUid: bob\nmemberUid: alice\n',
    # groupOfUniqueNames (uniqueMember: DN)
    f'dn: cn=research,{GROUPS}\nobjectClass: groupOfUniqueNames\ncn: research\n'
    f'uniqueMember: {people_dn("bob")}\n',
])

CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath {modules}
moduleload back_mdb
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem

database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw "{root_password}"
directory {dir}/db
index objectClass,uid,cn,member,uniqueMember,memberUid eq
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="{service_dn}" read
    by self read
    by * none
"""


def require(tool):
    path = tool if os.path.isabs(tool) else shutil.which(tool)
    if not path or not os.path.exists(path):
        raise RuntimeError(
            '%s is missing: the LDAP tests need a real OpenLDAP server and tools; install '
            'them (Debian: apt-get install slapd ldap-utils openssl; .ci/run does)' % tool)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Slapd:
    def __init__(self, directory):
        self.dir = str(directory)
        self.port = None
        self.ldaps_port = None
        self.process = None

    @property
    def uri(self):
        return 'ldap://127.0.0.1:%d' % self.port

    @property
    def ldaps_uri(self):
        return 'ldaps://127.0.0.1:%d' % self.ldaps_port

    @property
    def ca_file(self):
        return os.path.join(self.dir, 'cert.pem')

    def settings(self, **overrides):
        """Notebook settings for this directory (plain ldap://, service account)."""
        settings = {
            'sagenb.ldap.uri': self.uri,
            'sagenb.ldap.bind_dn': SERVICE_DN,
            'sagenb.ldap.bind_password': SERVICE_PASSWORD,
            'sagenb.ldap.base_dn': SUFFIX,
            'sagenb.ldap.group_base_dn': GROUPS,
            'sagenb.ldap.timeout': '3',
        }
        settings.update({'sagenb.ldap.' + k: v for k, v in overrides.items()})
        return settings

    def start(self):
        slapd = require(SLAPD)
        slapadd = require(os.path.join(os.path.dirname(SLAPD), 'slapadd'))
        openssl = require('openssl')
        require('ldapmodify')
        os.makedirs(os.path.join(self.dir, 'db'), exist_ok=True)
        if not os.path.exists(self.ca_file):
            # Self-signed, for 127.0.0.1 and localhost: the client trusts it only when
            # given it as its CA file.
            subprocess.run(
                [openssl, 'req', '-x509', '-newkey', 'ec',
                 '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
                 '-subj', '/CN=127.0.0.1',
                 '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
                 '-keyout', os.path.join(self.dir, 'key.pem'), '-out', self.ca_file],
                check=True, capture_output=True)
        conf = os.path.join(self.dir, 'slapd.conf')
        with open(conf, 'w') as f:
            f.write(CONF.format(schema=SCHEMA_DIR, dir=self.dir, modules=MODULE_PATH,
                                suffix=SUFFIX, root_dn=ROOT_DN,
                                root_password=ROOT_PASSWORD, service_dn=SERVICE_DN))
        if not os.listdir(os.path.join(self.dir, 'db')):
            data = os.path.join(self.dir, 'data.ldif')
            with open(data, 'w') as f:
                f.write(DATA)
            done = subprocess.run([slapadd, '-f', conf, '-l', data], capture_output=True,
                                  text=True)
            if done.returncode:
                raise RuntimeError('slapadd failed:\n' + done.stderr)
        self.port = self.port or free_port()
        self.ldaps_port = self.ldaps_port or free_port()
        self.log = open(os.path.join(self.dir, 'slapd.log'), 'ab')
        # -d keeps slapd in the foreground, so the test owns (and ends) the process.
        self.process = subprocess.Popen(
            [slapd, '-f', conf, '-h', '%s/ %s/' % (self.uri, self.ldaps_uri), '-d', '0'],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('slapd exited (%s):\n%s'
                                   % (self.process.returncode, self.log_text()))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                socket.create_connection(('127.0.0.1', self.ldaps_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError('slapd did not listen within 15 s:\n' + self.log_text())

    def log_text(self):
        with open(os.path.join(self.dir, 'slapd.log'), errors='replace') as f:
            return f.read()[-4000:]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, 'log', None):
            self.log.close()
            self.log = None

    def modify(self, ldif):
        """Apply an LDIF change (``changetype: modify`` ...) as the root DN."""
        done = subprocess.run(
            ['ldapmodify', '-x', '-H', self.uri, '-D', ROOT_DN, '-w', ROOT_PASSWORD],
            input=ldif, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError('ldapmodify failed: %s' % done.stderr)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
