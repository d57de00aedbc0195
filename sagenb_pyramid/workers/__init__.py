"""Evaluation: worker hosts run Sage processes and store what they print in ZODB as
it arrives; app servers hand them cells (hosts.py says which host runs what)."""
from .contract import Job  # noqa: F401
from .hosts import Workers  # noqa: F401
from .registry import WorkerRegistry  # noqa: F401


def includeme(config):
    config.add_request_method(
        lambda request: request.registry.workers.bound(request), 'workers', reify=True)
