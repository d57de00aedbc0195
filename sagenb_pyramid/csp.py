"""The Content-Security-Policy of every page, and the frame that draws HTML outputs.

A tween gives every response a policy (unless its view set one: data files and exports
have their own ``sandbox`` policy), ``Referrer-Policy`` and ``X-Content-Type-Options``.
The page's own scripts carry a per-request nonce (``request.csp_nonce`` in templates);
``'strict-dynamic'`` lets them load what they load (CodeMirror's modules, MathJax and its
``ui/safe``), and nothing else runs: no inline script or handler, no ``javascript:`` URL,
so a hole in the sanitizer or in MathJax does not become script in the viewer's session.

Images, styles, fonts and requests come from the notebook only (and ``data:``/``blob:``
images): a remote image in a text cell would tell its author who read it and when, and a
stylesheet could read the page (docs/security.md, "Content of other people").

``/_frame`` is the document HTML outputs are drawn in: a sandboxed frame (no
``allow-same-origin``, so an opaque origin without the viewer's cookies) that gets the
output's HTML by ``postMessage`` and writes it with its scripts.  Its own policy lets
scripts run (3-D plots), and it may come from a separate origin for user content
(``sagenb.usercontent_url``).
"""
import secrets
from urllib.parse import urlsplit

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

FRAME_PATH = '/_frame'

# Hosted captchas: their widget loads frames, styles and requests of their own hosts.
CAPTCHA_HOSTS = {
    'www.google.com': ('https://www.google.com', 'https://www.gstatic.com'),
    'js.hcaptcha.com': ('https://hcaptcha.com', 'https://*.hcaptcha.com'),
    'challenges.cloudflare.com': ('https://challenges.cloudflare.com',),
}

FRAME_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>output</title></head>
<body><script src="%s"></script></body></html>
"""


def origin_of(url):
    parts = urlsplit(url)
    return '%s://%s' % (parts.scheme, parts.netloc) if parts.scheme and parts.netloc else ''


def csp_nonce(request):
    """A fresh nonce for the page's own ``<script>`` elements."""
    return secrets.token_urlsafe(18)


def allow_hosts_of(request, url):
    """Let the page use a third party's widget loaded from ``url`` (a hosted captcha);
    returns '' so that a template can call it inline."""
    host = urlsplit(url).hostname or ''
    request.environ.setdefault('sagenb.csp_hosts', set()).update(
        CAPTCHA_HOSTS.get(host, (origin_of(url),)))
    return ''


def usercontent_origin(settings):
    return origin_of(settings.get('sagenb.usercontent_url', '') or '')


def frame_url(request):
    """Where the page loads the frame of HTML outputs from."""
    base = (request.registry.settings.get('sagenb.usercontent_url') or '').rstrip('/')
    return (base or request.application_url) + FRAME_PATH


def page_policy(request):
    nonce = request.environ.get('sagenb.csp_nonce_used')
    extra = ' '.join(sorted(request.environ.get('sagenb.csp_hosts', ())))
    usercontent = usercontent_origin(request.registry.settings)
    scripts = ("'nonce-%s' 'strict-dynamic'" % nonce) if nonce else "'none'"
    directives = [
        "default-src 'self'",
        'script-src %s' % scripts,
        "style-src 'self' 'unsafe-inline' %s" % extra,
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self' %s" % extra,
        "frame-src 'self' %s %s" % (usercontent, extra),
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    return '; '.join(' '.join(d.split()) for d in directives)


def frame_policy(request):
    """The output frame's own policy: scripts of the output run, in an opaque origin."""
    settings = request.registry.settings
    ancestors = ["'self'"]
    public = origin_of(settings.get('sagenb.public_url') or '')
    if public:
        ancestors.append(public)
    elif usercontent_origin(settings):
        # Served from the user-content origin, the frame is framed by the notebook,
        # whose origin only sagenb.public_url names.  Harmless to let anyone frame it:
        # it draws only what its parent sends, in an opaque origin without cookies.
        ancestors = ['*']
    return '; '.join([
        'sandbox allow-scripts',
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob: data:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'none'",
        "form-action 'none'",
        'frame-ancestors %s' % ' '.join(ancestors),
    ])


def output_frame(request):
    response = Response(FRAME_HTML % request.static_path('sagenb_pyramid:static/frame.js'),
                        content_type='text/html', charset='utf-8')
    response.headers['Content-Security-Policy'] = frame_policy(request)
    response.cache_control.max_age = 3600
    return response


def security_headers_tween_factory(handler, registry):
    def tween(request):
        response = handler(request)
        headers = response.headers
        if 'Content-Security-Policy' not in headers:
            headers['Content-Security-Policy'] = page_policy(request)
        headers.setdefault('X-Content-Type-Options', 'nosniff')
        # Addresses of worksheets are nobody else's business.
        headers.setdefault('Referrer-Policy', 'same-origin')
        return response
    return tween


def _nonce(request):
    nonce = csp_nonce(request)
    request.environ['sagenb.csp_nonce_used'] = nonce
    return nonce


def includeme(config):
    config.add_request_method(_nonce, 'csp_nonce', reify=True)
    config.add_request_method(allow_hosts_of, 'csp_allow_hosts_of')
    config.add_request_method(frame_url, 'output_frame_url', reify=True)
    config.add_route('output_frame', FRAME_PATH)
    config.add_view(output_frame, route_name='output_frame', request_method='GET',
                    permission=NO_PERMISSION_REQUIRED)
    config.add_tween('sagenb_pyramid.csp.security_headers_tween_factory')
