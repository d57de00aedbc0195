"""``after_commit``: the one way to run a side effect that must not repeat (a mail, a job
handed to a worker host, an audit entry of its own, a process stopped) once the
request's transaction has committed.

pyramid_retry runs a request again after a ConflictError: hooks of an aborted attempt
are dropped with its transaction, so the action runs once, for the attempt that
committed, and never when nothing was committed.  An exception raised by the action is
logged by the transaction package; the response is already decided.
"""


def after_commit(request, action):
    """Call ``action()`` once ``request``'s transaction has committed."""
    request.tm.get().addAfterCommitHook(lambda committed: committed and action())
