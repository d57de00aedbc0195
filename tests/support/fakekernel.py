"""A fake kernel: the kernel boundary (``contract.KernelOperations``) without Sage.

It lets the registry, the output store, the long-poll and fault handling be tested in
milliseconds: what a real process does in seconds is played by a thread (the
"process") that runs a cell's code as a tiny script, one command a line, and answers
as a Jupyter kernel does, on an IOPub, a shell and a stdin queue.

    print TEXT           a stdout stream          stderr TEXT   a stderr stream
    result TEXT          an execute_result        display TEXT  a display_data
    error NAME VALUE     an error (the cell goes on, as a printed traceback would)
    clear                clear_output             sleep SECONDS  (SIGINT stops it)
    ignore_interrupts    SIGINT no longer stops it (the cell must be restarted)
    input PROMPT         input(): waits for the answer, then prints "got ANSWER"
    exit STATUS          the process ends now    no_reply       "idle" without a reply
    count                a result: how many cells this process ran (its state)

Anything else is a NameError, as in Python.  Real Sage stays for the end-to-end tests
(tests/e2e/sage/ and the others).
"""
import itertools
import queue
import threading
import time
import uuid

from sagenb_pyramid.workers.kernel import KernelStartError

_pids = itertools.count(90000)


class FakeKernel:
    # As SageKernel: no folder, the server's uid, replies list no files.
    workdir = None
    uid = gid = None
    reports_files = False

    def __init__(self, fail_start=None, answer_delay=0.0):
        self.fail_start = fail_start
        self.answer_delay = answer_delay  # seconds a completion or `?` takes to answer
        self.pid = next(_pids)
        self.iopub_queue = queue.Queue()
        self.shell_queue = queue.Queue()
        self.stdin_queue = queue.Queue()
        self.answers = queue.Queue()
        self.requests = queue.Queue()
        self.status = None          # None while alive; an exit status (-9: killed)
        self.interrupted = threading.Event()
        self.ignore_interrupts = False
        self.typeset = False
        self.quiet_code = []
        self.executed = []          # code of every execute request, in order
        self.comms = []
        self.count = 0
        self.closed = False
        self._thread = None

    # -- the boundary ---------------------------------------------------------------
    def start(self):
        if self.fail_start:
            raise KernelStartError('could not start the Sage process: %s' % self.fail_start)
        self._thread = threading.Thread(target=self._run, name='fake-kernel-%d' % self.pid,
                                        daemon=True)
        self._thread.start()
        return self

    def execute(self, code):
        msg_id = uuid.uuid4().hex
        self.executed.append(code)
        self.requests.put(('execute', msg_id, code))
        return msg_id

    def iopub(self, timeout):
        try:
            return self.iopub_queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stdin_request(self):
        try:
            return self.stdin_queue.get_nowait()
        except queue.Empty:
            return None

    def send_input(self, value):
        self.answers.put(value)

    def send_comm(self, comm_id, data):
        msg_id = uuid.uuid4().hex
        self.comms.append((comm_id, data))
        self.requests.put(('comm', msg_id, None))
        return msg_id

    def ask(self, kind, content):
        msg_id = uuid.uuid4().hex
        self.requests.put((kind, msg_id, content))
        return msg_id

    def shell_reply(self, msg_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.status is not None and self.shell_queue.empty()):
                return None
            try:
                reply = self.shell_queue.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            if reply['parent_header'].get('msg_id') == msg_id:
                return reply

    def drain_shell(self):
        while not self.shell_queue.empty():
            self.shell_queue.get_nowait()

    def run_quietly(self, code, timeout=30):
        self.quiet_code.append(code)

    def set_display(self, typeset):
        self.typeset = typeset

    def interrupt(self):
        self.interrupted.set()

    def kill(self):
        if self.status is None:
            self.status = -9
        self.requests.put(None)

    def is_alive(self):
        return self.status is None

    def exit_description(self):
        if self.status is None:
            return 'the Sage process stopped'
        if self.status < 0:
            return 'the Sage process was killed by SIGKILL'
        return 'the Sage process exited with status %d' % self.status

    def shutdown(self):
        self.kill()
        self.closed = True

    # -- the "process" ----------------------------------------------------------------
    def _send(self, msg_id, kind, content):
        if self.status is None:
            self.iopub_queue.put({'msg_type': kind, 'content': content,
                                  'header': {'msg_id': uuid.uuid4().hex, 'msg_type': kind},
                                  'parent_header': {'msg_id': msg_id}})

    def _reply(self, msg_id, kind, content):
        if self.status is None:
            self.shell_queue.put({'msg_type': kind, 'content': content,
                                  'parent_header': {'msg_id': msg_id}})

    def _run(self):
        while True:
            request = self.requests.get()
            if request is None or self.status is not None:
                return
            kind, msg_id, payload = request
            if kind in ('complete', 'inspect'):
                time.sleep(self.answer_delay)
            if kind == 'execute':
                self._execute(msg_id, payload)
            elif kind == 'complete':
                code = payload['code'][:payload['cursor_pos']]
                word = code.split()[-1] if code.split() else ''
                matches = [n for n in ('fake_one', 'fake_two') if n.startswith(word)]
                self._reply(msg_id, 'complete_reply', {
                    'status': 'ok', 'matches': matches,
                    'cursor_start': len(code) - len(word), 'cursor_end': len(code)})
            elif kind == 'inspect':
                self._reply(msg_id, 'inspect_reply', {
                    'status': 'ok', 'found': True,
                    'data': {'text/plain': 'fake docs of %s' % payload['code']}})
            else:  # a comm message: the kernel is busy with it, then idle
                self._send(msg_id, 'status', {'execution_state': 'idle'})

    def _execute(self, msg_id, code):
        self.interrupted.clear()
        self.count += 1
        status = 'ok'
        send = lambda kind, **content: self._send(msg_id, kind, content)  # noqa: E731
        reply = True
        try:
            for line in code.splitlines():
                command, _, rest = line.strip().partition(' ')
                if not command:
                    continue
                if command == 'print':
                    send('stream', name='stdout', text=rest + '\n')
                elif command == 'stderr':
                    send('stream', name='stderr', text=rest + '\n')
                elif command == 'result':
                    send('execute_result', data={'text/plain': rest}, metadata={},
                         execution_count=self.count)
                elif command == 'display':
                    send('display_data', data={'text/plain': rest}, metadata={})
                elif command == 'count':
                    send('execute_result', data={'text/plain': str(self.count)},
                         metadata={}, execution_count=self.count)
                elif command == 'error':
                    name, _, value = rest.partition(' ')
                    send('error', ename=name, evalue=value, traceback=[name + ': ' + value])
                    status = 'error'
                elif command == 'clear':
                    send('clear_output', wait=False)
                elif command == 'ignore_interrupts':
                    self.ignore_interrupts = True
                elif command == 'sleep':
                    self._sleep(float(rest))
                elif command == 'input':
                    self.stdin_queue.put({'msg_type': 'input_request',
                                          'content': {'prompt': rest, 'password': False}})
                    answer = self._wait_answer()
                    send('stream', name='stdout', text='got %s\n' % answer)
                elif command == 'exit':
                    self.status = int(rest)
                    return
                elif command == 'no_reply':
                    reply = False
                else:
                    send('error', ename='NameError', evalue="name '%s' is not defined"
                         % command, traceback=[])
                    status = 'error'
                    break
                if self.status is not None:
                    return
        except KeyboardInterrupt:
            send('error', ename='KeyboardInterrupt', evalue='', traceback=[])
            status = 'error'
        if self.status is not None:
            return
        send('status', execution_state='idle')
        if reply:
            self._reply(msg_id, 'execute_reply', {'status': status,
                                                  'execution_count': self.count,
                                                  'payload': []})

    def _sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.status is not None:
                return
            if self.interrupted.is_set():
                self.interrupted.clear()
                if not self.ignore_interrupts:
                    raise KeyboardInterrupt
            time.sleep(0.01)

    def _wait_answer(self):
        while self.status is None:
            try:
                return self.answers.get(timeout=0.01)
            except queue.Empty:
                if self.interrupted.is_set() and not self.ignore_interrupts:
                    self.interrupted.clear()
                    raise KeyboardInterrupt from None
        return None


class FakeKernels:
    """A kernel factory for ``WorkerRegistry(kernel_factory=...)`` that keeps every
    kernel it made (``made``), and can be told to fail the next starts."""

    def __init__(self):
        self.made = []
        self.fail_next = None
        self.answer_delay = 0.0  # of the kernels made from now on

    def __call__(self):
        kernel = FakeKernel(fail_start=self.fail_next, answer_delay=self.answer_delay)
        self.fail_next = None
        self.made.append(kernel)
        return kernel.start()
