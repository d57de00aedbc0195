"""Simulated users for the fault tests (tests/e2e/test_faults.py) and bench/faults.py.

Each user is a thread with an API token and a worksheet of its own on one app server.
In a loop it adds a cell ``n = <k>; n + 1``, evaluates it (``wait``, as the page does),
checks the answer and reads its worksheet, with a think time between (``Load.think``:
0.2-0.8 s by default, a stress test; bench/faults.py passes a class's 10-30 s), the
users' first steps spread over ``Load.arrival`` seconds (0: all at once).  Every
request is recorded: when, which user, what, the HTTP status (0: no answer), and for an
evaluation the cell's end (``done``, an error's ``ename``).  A test stops the load and
reads the records: which failed, and how, during which stretch of time.
"""
import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sagenb_pyramid import db_from_uri
from sagenb_pyramid.auth.passwords import hash_password
from sagenb_pyramid.auth.tokens import create_token
from sagenb_pyramid.resources import ensure_root, in_transaction

from .notebook import PASSWORD


def add_users(uri, logins):
    """The users (one password hash for all) and an API token each, written straight to
    the database at ``uri`` before or while servers run; {login: token}."""
    db = db_from_uri(uri, 'unnamed', {})
    try:
        ensure_root(db)
        hashed = hash_password(PASSWORD)

        def add(root):
            tokens = {}
            for login in logins:
                user = root.user_by_login(login) or root.add_user(login, hashed)
                tokens[login] = create_token(root, user)
            return tokens
        return in_transaction(db, add)
    finally:
        db.close()


@dataclass
class Record:
    at: float          # seconds since the load started
    user: str
    kind: str          # 'evaluate', 'read', 'create'
    status: int        # HTTP status, 0 for no answer
    seconds: float
    end: str = ''      # an evaluation's end: 'done', 'wrong', or the error's ename
    message: str = ''  # {"error": ...} of a refused request, or the error's value


class User:
    def __init__(self, load, login, token, base_url):
        self.load, self.login, self.token = load, login, token
        self.base_url = base_url
        self.ws = None
        self._local = threading.local()  # a connection per thread (the test asks too)
        self._all = []
        self.count = 0
        self.rng = random.Random(login)

    def switch(self, base_url):
        """Send the next requests to another app server (a load balancer would): each
        thread opens a new connection at its next request.  Not closed from here: a
        connection closed by another thread in the middle of a request broke it with an
        AttributeError of http.client (seen once, in test_faults)."""
        self.base_url = base_url

    @property
    def conn(self):
        return getattr(self._local, 'conn', None)

    @conn.setter
    def conn(self, conn):
        self._local.conn = conn
        if conn is not None:
            self._all.append(conn)

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close_all(self):
        for conn in self._all:
            conn.close()

    def request(self, method, path, body=None, timeout=None):
        """(status, JSON answer) with status 0 when the server did not answer."""
        base = self.base_url
        url = urlsplit(base)
        headers = {'Authorization': 'Bearer ' + self.token, 'Accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        if self.conn is not None and getattr(self._local, 'base', None) != base:
            self._close()  # switched to another app server since it was opened
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(url.hostname, url.port,
                                                       timeout=timeout or self.load.timeout)
                self._local.base = base
            try:
                self.conn.request(method, path, data, headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                reused = attempt == 0
                self._close()
                if not reused:
                    return 0, {'error': 'no answer: %s' % exc}
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                return 0, {'error': 'no answer: %s' % exc}
        try:
            answer = json.loads(raw or b'{}')
        except ValueError:
            answer = {'error': raw[:200].decode('utf-8', 'replace')}
        return response.status, answer

    def timed(self, kind, method, path, body=None):
        started = time.monotonic()
        status, answer = self.request(method, path, body)
        record = Record(started - self.load.started, self.login, kind, status,
                        time.monotonic() - started)
        if status >= 400 or status == 0:
            record.message = str(answer.get('error', answer))[:300]
        return record, answer

    def setup(self):
        record, answer = self.timed('create', 'POST', '/home/%s/' % self.login,
                                    {'name': 'load'})
        self.load.add(record)
        if record.status != 201:
            raise AssertionError('%s could not make a worksheet: %s' % (self.login, record))
        self.ws = urlsplit(answer['url']).path

    def step(self):
        self.count += 1
        k = self.count
        record, answer = self.timed('evaluate', 'POST', self.ws + 'cells',
                                    {'input': 'n = %d; n + 1' % k})
        if record.status == 201:
            cell = answer['id']
            record, answer = self.timed('evaluate', 'POST',
                                        '%scells/%d/evaluate' % (self.ws, cell),
                                        {'wait': self.load.wait})
            if record.status == 200:
                record.end = ending(answer, str(k + 1))
                if record.end not in ('done', 'pending'):
                    record.message = error_value(answer)
                if record.end == 'pending':  # still queued or running: poll on
                    record = self.follow(record, cell, k)
        self.load.add(record)
        read, _ = self.timed('read', 'GET', self.ws)
        self.load.add(read)

    def follow(self, record, cell, k):
        deadline = time.monotonic() + self.load.wait * 2
        while time.monotonic() < deadline and not self.load.stopping.is_set():
            status, answer = self.request('GET', '%scells/%d?wait=5' % (self.ws, cell))
            if status != 200:
                record.status, record.message = status, str(answer.get('error', ''))[:300]
                return record
            end = ending(answer, str(k + 1))
            if end != 'pending':
                record.end = end
                record.message = '' if end == 'done' else error_value(answer)
                record.seconds = time.monotonic() - self.load.started - record.at
                return record
        # Cut short by the end of the run, or still not finished after twice the wait.
        record.end = 'stopped' if self.load.stopping.is_set() else 'pending'
        return record

    def run(self, delay=0.0):
        """Steps until the load stops, the first one ``delay`` seconds from now (the
        user's arrival)."""
        if delay:
            self.load.stopping.wait(delay)
        while not self.load.stopping.is_set():
            try:
                self.step()
            except Exception as exc:  # a bug of the test's own: recorded, not hidden
                self.load.add(Record(time.monotonic() - self.load.started, self.login,
                                     'crash', -1, 0, message=repr(exc)))
            self.load.stopping.wait(self.rng.uniform(*self.load.think))


def ending(cell, expected):
    if cell.get('status') in ('queued', 'running', 'new'):
        return 'pending'
    if cell.get('status') == 'done':
        outputs = cell.get('outputs') or []
        text = outputs[-1].get('data', {}).get('text/plain') if outputs else None
        return 'done' if text == expected else 'wrong'
    outputs = cell.get('outputs') or []
    return outputs[-1].get('ename', 'error') if outputs else 'error'


def error_value(cell):
    outputs = cell.get('outputs') or []
    return str(outputs[-1].get('evalue', ''))[:300] if outputs else ''


@dataclass
class Load:
    """``users``: {login: (token, base URL)}."""
    users: dict
    think: tuple = (0.2, 0.8)
    wait: float = 20.0
    timeout: float = 60.0
    arrival: float = 0.0  # seconds over which a start()'s users take their first steps
    records: list = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.by_login = {login: User(self, login, token, url)
                         for login, (token, url) in self.users.items()}
        self.threads = []

    def add(self, record):
        with self.lock:
            self.records.append(record)

    def now(self):
        return time.monotonic() - self.started

    def start(self, logins=None):
        """Start the users named (by default every one not started yet): each makes its
        worksheet now, and they arrive (take their first step) evenly over ``arrival``."""
        started = {t.name[5:] for t in self.threads}
        users = [u for u in self.by_login.values()
                 if (logins is None or u.login in logins) and u.login not in started]
        for user in users:
            user.setup()
        for i, user in enumerate(users):
            thread = threading.Thread(target=user.run, args=(i * self.arrival / len(users),),
                                      name='load-' + user.login, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout + 10)
        for user in self.by_login.values():
            user.close_all()
        stuck = [t.name for t in self.threads if t.is_alive()]
        assert not stuck, 'simulated users still waiting for an answer: %s' % stuck

    def select(self, since=0.0, until=None, users=None, kind=None):
        with self.lock:
            return [r for r in self.records
                    if r.at >= since and (until is None or r.at < until)
                    and (users is None or r.user in users)
                    and (kind is None or r.kind == kind)]

    def completed(self, since=0.0, until=None, users=None):
        """Evaluations that ended with the right answer."""
        return [r for r in self.select(since, until, users, 'evaluate')
                if r.status == 200 and r.end == 'done']

    def failures(self, since=0.0, until=None, users=None):
        return [r for r in self.select(since, until, users)
                if r.status not in (200, 201) or r.end not in ('', 'done', 'stopped')]

    def server_errors(self):
        return [r for r in self.records if r.status >= 500 and r.status not in (503, 507)
                or r.status == -1]

    def wait_for(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, 'timed out waiting for ' + what
            time.sleep(0.2)


# -- what the fault tests read of a run (tests/e2e/test_faults.py and its kin) ----------
def placements(db, logins):
    """login -> the host name its (only) worksheet is placed on."""
    def read(root):
        found = {}
        for login in logins:
            user = root.user_by_login(login)
            for key, tag in root.placements.items():
                if key.startswith(user.id + '/'):
                    found[login] = tag.rpartition(':')[0]
        return found
    return in_transaction(db, read)


def everyone_completed(load, since, users=None):
    """A condition for ``Load.wait_for``: each of ``users`` (all) had a right answer to
    an evaluation started after ``since``."""
    users = set(users if users is not None else load.by_login)
    return lambda: users <= {r.user for r in load.completed(since=since)}


def describe(records):
    """Records as lines for an assertion's message."""
    return '\n'.join('%.1f %s %s %d %s %s' % (r.at, r.user, r.kind, r.status, r.end,
                                              r.message[:120]) for r in records[:30])


def health_of(url):
    """``/health`` of the app server at ``url`` as a load balancer asks it (no cookie,
    no token): (status, body)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url + '/health', timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check_health_says_database_away(*servers):
    """Each app server's ``/health`` answers 503 naming the database, within 10 s."""
    for server in servers:
        started = time.monotonic()
        status, health = health_of(server.url)
        assert status == 503 and any(p.startswith('database: ')
                                     for p in health['problems']), health
        assert time.monotonic() - started < 10


def cells_of(user):
    """The cells of ``user``'s worksheet, read through its app server."""
    status, sheet = user.request('GET', user.ws)
    assert status == 200, sheet
    return sheet['cells']


def kill_an_app_server(load, victim, other, users, restart):
    """Kill the app server ``victim`` (SIGKILL) while a cell of ``users[0]`` runs on its
    worker host: the busy cell reads as lost (WorkerLost); ``users``, sent to ``other``
    (as a load balancer would), get results there; ``restart()`` makes a new app server
    in its place, which serves them again.  (when it was killed, the new app server)."""
    user = load.by_login[users[0]]
    status, cell = user.request('POST', user.ws + 'cells', {'input': 'sleep(60r)'})
    assert status == 201, cell
    url = '%scells/%d' % (user.ws, cell['id'])
    user.request('POST', url + '/evaluate', {'wait': 0})
    load.wait_for(lambda: user.request('GET', url)[1].get('status') == 'running', 30,
                  'the slow cell to run')
    victim.kill()
    killed = load.now()
    for login in users:
        load.by_login[login].switch(other.url)
    load.wait_for(lambda: user.request('GET', url)[1].get('status') == 'error', 15,
                  'the busy cell to be marked lost')
    lost = user.request('GET', url)[1]
    assert lost['outputs'][-1]['ename'] == 'WorkerLost', lost
    load.wait_for(everyone_completed(load, killed + 0.5, users), 60,
                  'the users of the killed app server to get results on the other')
    again = restart()
    try:
        for login in users:
            load.by_login[login].switch(again.url)
        back = load.now()
        load.wait_for(everyone_completed(load, back + 0.5, users), 60,
                      'the restarted app server to serve its users again')
    except BaseException:
        again.kill()
        raise
    return killed, again


def check_nothing_lost(load, done_before):
    """Once the load stopped: no cell stays queued or running (outputs of cells that ran
    through an outage were stored once it was over, a killed server's busy cells are
    lost), and every answer a user got is in the database, beside those they had
    before the faults (``done_before``: login -> right answers then)."""
    def settled():
        return all(c['status'] not in ('queued', 'running')
                   for user in load.by_login.values() for c in cells_of(user))
    load.wait_for(settled, 30, 'every cell to settle')
    for login, user in load.by_login.items():
        done = [c for c in cells_of(user) if c['status'] == 'done']
        assert len(done) >= len(load.completed(users={login})) >= done_before[login]


def check_outage_then_kill(load, in_outage, killed, of_one, of_two, database_message):
    """The failures of a database outage followed by app server one's kill (at
    ``killed``): before the kill, each one ``in_outage`` (a test of its time), a 503
    ``database_message`` within 10 s, users of both app servers among them; after it,
    none of ``of_two``'s, and ``of_one``'s only as a kill hurts."""
    assert load.server_errors() == [], describe(load.server_errors())
    failures = load.failures()
    outage = [r for r in failures if r.at < killed - 1]
    after_kill = [r for r in failures if r.at >= killed - 1]
    outside = [r for r in outage if not in_outage(r)]
    assert outside == [], describe(outside)
    for record in outage:
        assert record.status == 503 and record.message == database_message, \
            describe([record])
        assert record.seconds < 10, describe([record])
    assert {r.user for r in outage} & set(of_one) and {r.user for r in outage} & set(of_two), \
        'a 5 s outage went unnoticed on an app server: the test did not test it'
    assert [r for r in after_kill if r.user in of_two] == [], describe(after_kill)
    assert load.completed(since=killed, users=of_two)
    for record in after_kill:
        assert record.status == 0 or \
            (record.status == 200 and record.end in ('WorkerLost', 'NotRun')) or \
            (record.status == 503 and 'app1' in record.message), describe([record])
