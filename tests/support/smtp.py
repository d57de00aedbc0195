"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread) that keeps what it receives."""
import email
import email.policy
import re
import socket
import threading
import time

try:
    from aiosmtpd.controller import Controller
except ImportError as exc:  # the tests need it: fail, with what to do
    raise ImportError('tests need aiosmtpd: .venv/bin/pip install aiosmtpd') from exc


class Received:
    """One message as the server got it."""

    def __init__(self, envelope):
        self.sender = envelope.mail_from
        self.recipients = list(envelope.rcpt_tos)
        self.message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.subject = str(self.message['Subject'])
        part = self.message.get_body(('plain',))
        self.body = part.get_content() if part is not None else ''

    def links(self):
        return re.findall(r'https?://\S+', self.body)

    def __repr__(self):
        return '<mail to %s: %s>' % (', '.join(self.recipients), self.subject)


class _Handler:
    def __init__(self, server):
        self.server = server

    async def handle_DATA(self, server, session, envelope):
        self.server._add(Received(envelope))
        return '250 Message accepted for delivery'


class SmtpServer:
    """``with SmtpServer() as smtp:`` ... ``smtp.port``, ``smtp.messages``, ``smtp.wait``."""

    def __init__(self):
        self.messages = []
        self._cond = threading.Condition()
        # A free port chosen here: the controller connects to its port to check it runs.
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(_Handler(self), hostname='127.0.0.1', port=self.port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _add(self, received):
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()

    def wait(self, count=1, timeout=10):
        """The first ``count`` messages, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('expected %d mail(s), got %d: %r'
                                         % (count, len(self.messages), self.messages))
                self._cond.wait(left)
            return list(self.messages[:count])

    def to(self, address):
        return [m for m in self.messages if address in m.recipients]

    def clear(self):
        with self._cond:
            self.messages.clear()
