"""Outgoing mail: a ``pyramid_mailer`` SMTP mailer configured from ``sagenb.mail.*``.

``send_mail(request, to, subject, body)`` never sends at once: the message goes out only
once the request's transaction has committed.  A request that fails (an error view, a
ConflictError that pyramid_retry re-runs, a failed commit) sends nothing; the re-run
sends its own message once.  Links in mail start with ``public_url(request)``
(``sagenb.public_url``), never with the request's ``Host``.

Why not ``request.mailer.send`` (pyramid_mailer's transactional send)?  It does join
``request.tm`` (pyramid_tm's explicit manager; the global ``transaction.manager`` would
never commit here), but it talks to the SMTP server inside the two-phase commit's
``tpc_finish``, in an order set by ``sortKey``: with ZEO it may run while the storage's
commit lock is held, and an SMTP failure there breaks a commit that the database already
accepted.  So messages are handed, by an after-commit hook that runs only when the
commit succeeded, to one sender thread per application; SMTP errors are logged.  The
thread also keeps the response time the same whether or not a mail was sent (a reset
request must not tell whether an account exists).
"""
import logging
import queue
import threading

from pyramid_mailer.interfaces import IMailer
from pyramid_mailer.mailer import Mailer
from pyramid_mailer.message import Message

from ..aftercommit import after_commit

log = logging.getLogger(__name__)


class MailNotConfigured(RuntimeError):
    """``sagenb.mail.host`` is empty: this server sends no mail."""


def mailer_from_settings(settings):
    """The pyramid_mailer ``Mailer`` for these settings, or None without a mail host."""
    host = (settings.get('sagenb.mail.host') or '').strip()
    if not host:
        return None
    return Mailer(
        host=host, port=settings.get('sagenb.mail.port', 25),
        username=settings.get('sagenb.mail.username') or None,
        password=settings.get('sagenb.mail.password') or None,
        tls=settings.get('sagenb.mail.tls', False),
        ssl=settings.get('sagenb.mail.ssl', False),
        default_sender=settings.get('sagenb.mail.sender') or 'notebook@localhost')


class Outbox:
    """Messages waiting to be sent, and the thread that sends them one by one."""

    def __init__(self, mailer):
        self.mailer = mailer
        self.queue = queue.Queue()
        self._thread = None
        self._lock = threading.Lock()

    def put(self, message):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name='sagenb-mail',
                                                daemon=True)
                self._thread.start()
        self.queue.put(message)

    def _run(self):
        while True:
            message = self.queue.get()
            try:
                self.mailer.send_immediately(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the rest
                log.exception('could not send mail to %s', ', '.join(message.recipients))
            finally:
                self.queue.task_done()

    def join(self):
        """Wait until every queued message has been handed to the SMTP server."""
        self.queue.join()


def outbox(registry):
    return getattr(registry, 'sagenb_outbox', None)


def mail_enabled(request):
    return outbox(request.registry) is not None


def send_mail(request, to, subject, body):
    """Send a plain-text mail to ``to`` (an address or a list) after the request commits."""
    box = outbox(request.registry)
    if box is None:
        raise MailNotConfigured('this server sends no mail (set sagenb.mail.host)')
    recipients = [to] if isinstance(to, str) else list(to)
    message = Message(subject=subject, recipients=recipients, body=body,
                      sender=box.mailer.default_sender)
    after_commit(request, lambda: box.put(message))
    return message


def public_url(request):
    """The base of every link in a mail: ``sagenb.public_url``; without it (development)
    ``http://localhost:<port>``, the port this server listens on as the WSGI server says
    (``SERVER_PORT``), never the request's ``Host`` header, which the sender chooses."""
    configured = request.registry.settings.get('sagenb.public_url')
    if configured:
        return configured
    scheme = request.environ.get('wsgi.url_scheme', 'http')
    port = str(request.environ.get('SERVER_PORT') or '')
    default = {'http': '80', 'https': '443'}.get(scheme)
    return '%s://localhost%s' % (scheme, '' if port in ('', default) else ':' + port)


def includeme(config):
    from ..settings import public_url as checked_public_url
    settings = config.registry.settings
    # Checked here, when the application is made: a production server without it
    # refuses to start (SettingsError) instead of mailing links to wherever it is asked.
    settings['sagenb.public_url'] = checked_public_url(settings)
    mailer = mailer_from_settings(config.registry.settings)
    if mailer is None:
        config.registry.sagenb_outbox = None
        return
    if not settings['sagenb.public_url']:
        log.warning('sagenb.public_url is not set: links in mail go to '
                    'http://localhost:<port>; set SAGENB_PUBLIC_URL on a server others use')
    # Registered as pyramid_mailer does (``get_mailer(request)`` works), but sending goes
    # through ``send_mail`` above.
    config.registry.registerUtility(mailer, IMailer)
    config.registry.sagenb_outbox = Outbox(mailer)
