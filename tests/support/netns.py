"""Two "machines" on this one: network namespaces joined by a veth pair, as
``ip netns`` makes them (tests/e2e/test_netns.py).  Needs root and iproute2's ``ip``.

``Link(...)`` makes the namespaces and the link; ``exec_in(side)`` is the command prefix
that starts a process in a side's namespace; ``inside(side)`` moves the calling thread
(and the threads it starts afterwards) into it; ``down()``/``up()`` cut and mend the
link; ``remove()`` takes everything away (the processes in them must be stopped first).
"""
import contextlib
import ctypes
import os
import shutil
import subprocess
import uuid

CLONE_NEWNET = 0x40000000


def ip(*args, netns=None):
    command = ['ip'] + (['-n', netns] if netns else []) + list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError('%s failed: %s' % (' '.join(command), done.stderr.strip()))
    return done.stdout


def missing():
    """Why namespaces cannot be made here, or None."""
    if shutil.which('ip') is None:
        return "iproute2's ip is not installed (apt-get install iproute2)"
    if os.geteuid() != 0:
        return 'making network namespaces needs root (CI runs the suite as root)'
    probe = 'sgprobe-%s' % uuid.uuid4().hex[:8]
    done = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True, text=True)
    if done.returncode != 0:
        return '`ip netns add` does not work here: %s' % done.stderr.strip()
    subprocess.run(['ip', 'netns', 'del', probe], capture_output=True)
    return None


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), 'setns(CLONE_NEWNET) failed')


class Link:
    """Namespaces ``<side>-<run>`` for ``sides`` (two names) joined by a veth pair with
    10.200.<subnet>.1 on the first side and .2 on the second (a /30 in namespaces of
    this run only: nothing else on the machine sees it)."""

    def __init__(self, sides=('app', 'worker'), subnet=None):
        run = uuid.uuid4().hex[:6]
        self.subnet = subnet if subnet is not None else os.getpid() % 250 + 1
        self.netns = {side: 'sagenb-%s-%s' % (side, run) for side in sides}
        self.address = {side: '10.200.%d.%d' % (self.subnet, i + 1)
                        for i, side in enumerate(sides)}
        # Interface names: 15 characters at most.
        self.dev = {side: 'sg%s%s' % (side[0], run) for side in sides}
        self.made = []
        try:
            for side in sides:
                ip('netns', 'add', self.netns[side])
                self.made.append(self.netns[side])
                ip('link', 'set', 'lo', 'up', netns=self.netns[side])
            first, second = sides
            ip('link', 'add', self.dev[first], 'netns', self.netns[first], 'type', 'veth',
               'peer', 'name', self.dev[second], 'netns', self.netns[second])
            for side in sides:
                ip('addr', 'add', self.address[side] + '/30', 'dev', self.dev[side],
                   netns=self.netns[side])
                ip('link', 'set', self.dev[side], 'up', netns=self.netns[side])
        except BaseException:
            self.remove()
            raise

    def exec_in(self, side):
        return ['ip', 'netns', 'exec', self.netns[side]]

    @contextlib.contextmanager
    def inside(self, side):
        """The calling thread in ``side``'s namespace (threads it starts meanwhile stay
        there); back in its own afterwards."""
        with open('/proc/thread-self/ns/net') as own, \
                open('/var/run/netns/' + self.netns[side]) as there:
            _setns(there.fileno())
            try:
                yield
            finally:
                _setns(own.fileno())

    def down(self, side):
        ip('link', 'set', self.dev[side], 'down', netns=self.netns[side])

    def up(self, side):
        ip('link', 'set', self.dev[side], 'up', netns=self.netns[side])

    def stats(self, side):
        """(bytes received, bytes sent) on ``side``'s end of the link."""
        base = '/sys/class/net/%s/statistics/' % self.dev[side]
        out = subprocess.run(self.exec_in(side) + ['cat', base + 'rx_bytes', base + 'tx_bytes'],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return int(out[0]), int(out[1])

    def remove(self):
        """Delete the namespaces (their veth ends go with them)."""
        problems = []
        for name in reversed(self.made):
            done = subprocess.run(['ip', 'netns', 'del', name], capture_output=True,
                                  text=True, timeout=30)
            if done.returncode != 0:
                problems.append('%s: %s' % (name, done.stderr.strip()))
        self.made = []
        if problems:
            raise AssertionError('could not remove network namespaces: %s' % problems)

    def exists(self):
        listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True,
                                timeout=30).stdout
        return [n for n in self.netns.values() if n in listed.split()]
