"""The workers' contract: what a worker host does, and the words app servers and hosts share.

``HostOperations`` is a worker host's operations.  ``WorkerRegistry`` (registry.py)
implements them in the host's process, ``RemoteHost`` (hosts.py) over the network, and
the host's door (hostapi.py) serves exactly these, decoding each argument by its
annotation here.  ``Routes`` (hosts.py) gives a request the per-worksheet ones
(``WorksheetOperations``), routed to the worksheet's host.  A new operation is a method
here first; tests/unit/workers/test_contract.py checks that every implementation has it.

Worksheets are keyed by ``(owner id, number)``.  Only the standard library is imported
here, so every module of the workers (and the views) can use it without a circle.
"""
import inspect
from dataclasses import asdict, dataclass, fields
from typing import Optional, Protocol, Tuple

Key = Tuple[str, int]


@dataclass
class Job:
    owner_id: str
    number: int
    cell_id: int
    run_id: str
    code: str
    typeset: bool = False
    # The worksheet's data files: (name, stamp, path of the committed blob file).
    data_files: tuple = ()
    # The evaluating request waits for the result: the cell's queued state may be
    # stored with the result if that comes within ``flush_interval``.
    awaited: bool = False

    @property
    def key(self):
        return (self.owner_id, self.number)

    @property
    def cell_key(self):
        return self.key + (self.cell_id,)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A job from its JSON form (``to_dict``); unknown fields are a TypeError."""
        values = dict(values)
        values['data_files'] = tuple(tuple(entry) for entry in values.get('data_files', ()))
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TypeError('unknown job fields %s' % sorted(unknown))
        return cls(**values)


class WorkerBusy(RuntimeError):
    """The worksheet's process did not get to a question in time (a cell is running)."""


class WorkerProblem(RuntimeError):
    """The worksheet's process could not answer (it could not start, or it died)."""


class HostUnreachable(WorkerProblem):
    """The worksheet's host could not be reached (503)."""


class NoCapacity(RuntimeError):
    """No Sage process may start for this worksheet now (409, with the reason)."""


def error_output(ename, evalue):
    """An nbformat error output with a one-line traceback."""
    return {'output_type': 'error', 'ename': ename, 'evalue': evalue,
            'traceback': ['%s: %s' % (ename, evalue)]}


class WorksheetOperations(Protocol):
    """What a request may do with a worksheet's process, wherever it runs."""

    def ask(self, key: Key, kind: str, content: dict, timeout: float) -> dict:
        """Ask the process (started if needed) a completion or introspection question:
        its reply content; WorkerBusy when cells kept it from being taken up within
        ``timeout`` (once taken up, it is answered however slowly), WorkerProblem if it
        failed."""

    def send_comm(self, key: Key, cell_id: int, run_id: str, comm_id: str,
                  data: dict) -> Optional[str]:
        """Pass a widget change of the page on: None when on its way, else why not."""

    def send_input(self, key: Key, cell_id: int, value: str) -> bool:
        """A value for the ``input()`` the cell waits in; False if it does not wait."""

    def interrupt(self, key: Key) -> bool:
        """Interrupt the running cell; False when none runs."""

    def restart(self, key: Key) -> int:
        """Stop the process; queued cells end NotRun.  How many were queued."""

    def discard(self, key: Key) -> None:
        """The worksheet is gone: stop its process and its thread."""

    def touch(self, key: Key) -> None:
        """A viewer looked at the worksheet: its process is not idle."""

    def has_process(self, key: Key) -> bool:
        """A live process, one starting, or cells waiting for one (what limits count)."""

    def is_running(self, key: Key) -> bool:
        """A live process."""


class HostOperations(WorksheetOperations, Protocol):
    """A worker host's operations: the worksheet ones, handing it a cell, and room."""

    def submit(self, job: Job) -> None:
        """Queue a cell (stored as queued before this returns unless ``awaited``)."""

    def make_room(self) -> bool:
        """Stop the process idle longest so that another may start; False: none idle."""

    def processes(self) -> list:
        """The worksheets' processes here, for the admin: each ``{"worksheet": "<owner
        id>/<number>", "pid", "memory" (bytes), "cpu_seconds", "idle_seconds",
        "running" (a cell runs), "queued" (cells waiting), "started"}``."""


def operations(protocol):
    """``{name: signature}`` of the operations a protocol names (``self`` left out)."""
    found = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol) or not getattr(klass, '_is_protocol', False):
            continue
        for name, value in vars(klass).items():
            if not name.startswith('_') and inspect.isfunction(value):
                found[name] = inspect.signature(value)
    return found


def missing_operations(implementation, protocol=HostOperations):
    """Operations of ``protocol`` that ``implementation`` (a class) lacks or takes other
    parameters for: an empty list when it implements the protocol."""
    missing = []
    for name, signature in operations(protocol).items():
        method = getattr(implementation, name, None)
        if not callable(method):
            missing.append(name)
            continue
        wanted = list(signature.parameters)[1:]
        have = list(inspect.signature(method).parameters)
        if have[:1] == ['self']:
            have = have[1:]
        if have != wanted:
            missing.append('%s%s' % (name, tuple(have)))
    return missing


class KernelOperations(Protocol):
    """The kernel boundary: what a worksheet's thread (worksheet.py) and the registry
    need of one process.  ``SageKernel`` (kernel.py) is a Sage process driven over the
    Jupyter protocol; tests/support/fakekernel.py a fake one for fast tests.  Besides these,
    a kernel has ``workdir`` (its folder, or None), ``uid``/``gid`` (None: the
    server's) and ``reports_files`` (its execute replies list the files cells wrote)."""

    def start(self) -> 'KernelOperations':
        """Start the process and wait until it answers; KernelStartError if it cannot."""

    def execute(self, code: str) -> str:
        """Send an ``execute_request`` (stdin allowed); its msg_id."""

    def iopub(self, timeout: float) -> Optional[dict]:
        """The next IOPub message, or None after ``timeout`` seconds."""

    def stdin_request(self) -> Optional[dict]:
        """An ``input_request`` waiting on the stdin channel, or None (no wait)."""

    def send_input(self, value: str) -> None:
        """Answer the ``input_request``."""

    def send_comm(self, comm_id: str, data: dict) -> str:
        """Send a ``comm_msg`` (a widget change); its msg_id."""

    def ask(self, kind: str, content: dict) -> str:
        """Send a ``complete`` or ``inspect`` request; its msg_id."""

    def shell_reply(self, msg_id: str, timeout: float) -> Optional[dict]:
        """The shell reply to ``msg_id``, or None after ``timeout`` or once it died."""

    def drain_shell(self) -> None:
        """Drop shell replies nobody waits for."""

    def run_quietly(self, code: str, timeout: float = 30) -> None:
        """Run set-up code (no outputs, no history)."""

    def set_display(self, typeset: bool) -> None:
        """Typeset (LaTeX) results or plain text from now on."""

    def interrupt(self) -> None:
        """SIGINT to the running cell."""

    def kill(self) -> None:
        """Kill the process (its sockets stay: the owning thread closes them)."""

    def is_alive(self) -> bool:
        """The process lives."""

    def exit_description(self) -> str:
        """How the process ended, in a sentence ("the Sage process exited with status
        3")."""

    def shutdown(self) -> None:
        """Stop the process and close its sockets and folder."""
