"""Prometheus metrics of one app server (``/metrics``, views/system.py).

Each app server (process) keeps its own figures and is scraped on its own, as
Prometheus expects of several processes: its requests, its long polls, its commits and
conflict retries, the logins it refused, and the Sage processes of its embedded worker
host.  The counters and histograms live in a ``CollectorRegistry`` of the application
(``registry.metrics``), not in prometheus_client's global one, so two applications of one
process (the tests make many) do not count into each other.

Requests are labelled by the view that answered (its module and function name: a fixed
set, whatever URL was asked), ``static`` for files, ``none`` when no view was found.
"""
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Seconds: from a quick page to the long polls' holds (up to the API's 60 s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The figures of one application; ``render()`` is the text ``/metrics`` sends."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            'sagenb_request_duration_seconds', 'Time to answer a request, by view',
            ['view', 'method'], buckets=BUCKETS, registry=r)
        self.in_flight = Gauge('sagenb_requests_in_flight', 'Requests being answered',
                               registry=r)
        self.long_polls = Gauge('sagenb_long_polls_in_flight',
                                'Requests holding a long poll (wait=)', registry=r)
        self.commits = Counter('sagenb_commits_total', 'Request transactions committed',
                               registry=r)
        self.retries = Counter('sagenb_conflict_retries_total',
                               'Requests run again after a ConflictError', registry=r)
        self.login_failures = Counter('sagenb_login_failures_total',
                                      'Logins refused (wrong password, unknown, suspended)',
                                      registry=r)
        self.host = None  # the embedded worker host, whose processes are described

    def watch_host(self, host):
        if host is not None and self.host is None:
            self.host = host
            self.registry.register(HostCollector(host))

    def render(self):
        return generate_latest(self.registry)

    content_type = CONTENT_TYPE_LATEST


class HostCollector:
    """The worker host's state, read when scraped: queued and running cells, Sage
    processes and their memory, spares and the fork server."""

    def __init__(self, host):
        self.host = host

    def describe(self):
        return []  # read at scrape time only (auto_describe would call collect)

    def collect(self):
        host = self.host
        labels = ['host']
        name = [host.server_name]
        processes = host.processes()
        gauges = {
            'sagenb_sage_processes': ('Sage processes of worksheets', len(processes)),
            'sagenb_sage_spare_processes': ('Sage processes started ahead', host.spares()),
            'sagenb_sage_max_processes': ('Most Sage processes this host runs',
                                          host.max_total),
            'sagenb_cells_running': ('Cells running',
                                     sum(1 for p in processes if p['running'])),
            'sagenb_cells_queued': ('Cells waiting for their process',
                                    sum(p['queued'] for p in processes)),
            'sagenb_sage_memory_bytes': ('Resident memory of the worksheets\' Sage processes',
                                         sum(p['memory'] or 0 for p in processes)),
        }
        for metric, (text, value) in gauges.items():
            family = GaugeMetricFamily(metric, text, labels=labels)
            family.add_metric(name, value)
            yield family
        state = host.forkserver.state if host.forkserver is not None else 'none'
        family = GaugeMetricFamily('sagenb_forkserver_up',
                                   'The Sage fork server runs (1), or not (0)',
                                   labels=labels + ['state'])
        family.add_metric(name + [state], 1 if state == 'running' else 0)
        yield family


def metrics_of(registry):
    return registry.metrics


def view_label(request):
    """The view that answered: ``module.function`` (fixed by the code, not the URL)."""
    return request.environ.get('sagenb.view_label', 'none')


def metrics_tween_factory(handler, registry):
    """Times every request (its whole answer, the commit included: it sits over
    pyramid_tm and pyramid_retry) and counts those in flight."""
    metrics = registry.metrics

    def tween(request):
        metrics.in_flight.inc()
        start = time.perf_counter()
        try:
            return handler(request)
        finally:
            metrics.in_flight.dec()
            metrics.latency.labels(view_label(request), request.method).observe(
                time.perf_counter() - start)
    return tween


def label_views(view, info):
    """A view deriver: the answering view's label for the tween."""
    original = info.original_view
    label = '%s.%s' % (getattr(original, '__module__', '?'),
                       getattr(original, '__name__', type(original).__name__))
    if label.startswith('pyramid.static'):
        label = 'static'
    else:
        label = label.replace('sagenb_pyramid.views.', '')

    def wrapped(context, request):
        request.environ['sagenb.view_label'] = label
        return view(context, request)
    return wrapped


def count_commit(request):
    """Count the request's transaction when it commits (a NewRequest subscriber)."""
    metrics = request.registry.metrics
    try:
        txn = request.tm.get()
    except Exception:  # no transaction (pyramid_tm not active for this request)
        return
    txn.addAfterCommitHook(lambda ok: ok and metrics.commits.inc())


def count_login_failure(request):
    request.registry.metrics.login_failures.inc()


def count_retry(event):
    event.request.registry.metrics.retries.inc()


class Outside:
    """The context of ``/health`` and ``/metrics``: not the application root, which
    would be read from the database (down, perhaps: /health must say so)."""

    __name__ = ''
    __parent__ = None

    def __init__(self, request):
        pass


def includeme(config):
    from pyramid.events import NewRequest
    from pyramid.tweens import INGRESS
    config.include('sagenb_pyramid.logs')
    from pyramid_retry import IBeforeRetry
    config.registry.metrics = Metrics()
    config.add_view_deriver(label_views)
    # Outermost: the time includes pyramid_tm's commit.
    config.add_tween('sagenb_pyramid.metrics.metrics_tween_factory', under=INGRESS,
                     over='sagenb_pyramid.logs.request_id_tween_factory')
    config.add_subscriber(lambda event: count_commit(event.request), NewRequest)
    config.add_subscriber(count_retry, IBeforeRetry)
    # Routes come before traversal: these two answer without the database.
    config.add_route('health', '/health', factory=Outside)
    config.add_route('metrics', '/metrics', factory=Outside)
