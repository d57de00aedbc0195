"""Evaluation: the worker registry hands cells to Sage processes and stores what they
print in ZODB as it arrives."""
from .registry import Job, WorkerRegistry  # noqa: F401


def includeme(config):
    config.add_request_method(
        lambda request: request.registry.workers, 'workers', reify=True)
