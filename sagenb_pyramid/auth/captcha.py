"""The challenge at sign-up: a built-in question, or a hosted captcha checked server-side.

``sagenb.signup.captcha`` (admin-editable) chooses: ``builtin``, ``recaptcha``,
``hcaptcha``, ``turnstile`` or ``none``.

Built-in: a small arithmetic question (numbers partly in words).  The answer never
reaches the browser: the form carries a random challenge id, its expiry and an HMAC of
(id, expiry, answer) under a key derived from the session secret, so the answer can be
checked without storing anything per page view.  A challenge is single-use: its id goes
into ``root.used_challenges`` (id -> expiry) at its first submission, right or wrong.
It stops scripts that do not read the page, not a determined person; the hosted kinds
are the stronger choice for a public server.

Hosted: the page loads the provider's widget with ``sagenb.signup.captcha_site_key``;
its response token is POSTed with the secret (``SAGENB_SIGNUP_CAPTCHA_SECRET``) to the
verify URL (``sagenb.signup.captcha_verify_url``, default the provider's), which answers
``{"success": true|false}``.  The three providers share that protocol.
"""
import hashlib
import hmac
import json
import random
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request


from .. import server_settings
from ..settings import session_secret

KINDS = ('builtin', 'recaptcha', 'hcaptcha', 'turnstile', 'none')
BUILTIN_MAX_AGE = 1800

HOSTED = {
    # kind: (widget script, CSS class of the widget, form field of the response,
    #        default verify URL)
    'recaptcha': ('https://www.google.com/recaptcha/api.js', 'g-recaptcha',
                  'g-recaptcha-response', 'https://www.google.com/recaptcha/api/siteverify'),
    'hcaptcha': ('https://js.hcaptcha.com/1/api.js', 'h-captcha', 'h-captcha-response',
                 'https://api.hcaptcha.com/siteverify'),
    'turnstile': ('https://challenges.cloudflare.com/turnstile/v0/api.js', 'cf-turnstile',
                  'cf-turnstile-response',
                  'https://challenges.cloudflare.com/turnstile/v0/siteverify'),
}

_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
          'ten', 'eleven', 'twelve']


class CaptchaUnavailable(RuntimeError):
    """The hosted captcha's verify service could not be asked."""


def kind(request):
    value = server_settings.get(request, 'sagenb.signup.captcha')
    return value if value in KINDS else 'builtin'


def _key(registry):
    key = getattr(registry, 'sagenb_captcha_key', None)
    if key is None:
        # A key of its own, derived from the session secret (not the secret itself).
        key = hmac.new(session_secret(registry.settings).encode('utf-8'),
                       b'sagenb builtin captcha', hashlib.sha256).digest()
        registry.sagenb_captcha_key = key
    return key


def _mac(registry, *parts):
    text = '|'.join(str(p) for p in parts)
    return hmac.new(_key(registry), text.encode('utf-8'), hashlib.sha256).hexdigest()


def _answer_mac(registry, challenge_id, expires, answer):
    return _mac(registry, 'answer', challenge_id, expires, answer.strip().lower())


def _question():
    a, b = random.randint(2, 12), random.randint(2, 12)
    op = random.choice(['plus', 'times', 'minus'])
    if op == 'minus' and b > a:
        a, b = b, a
    answer = {'plus': a + b, 'times': a * b, 'minus': a - b}[op]
    # One of the numbers as a word, so that the question is not a ready-made expression.
    if random.random() < 0.5:
        text = 'What is %s %s %d?' % (_WORDS[a], op, b)
    else:
        text = 'What is %d %s %s?' % (a, op, _WORDS[b])
    return text, str(answer)


def new_builtin(request, now=None):
    """A fresh challenge: the question and the hidden form fields."""
    now = time.time() if now is None else now
    text, answer = _question()
    challenge_id = secrets.token_urlsafe(16)
    expires = int(now) + BUILTIN_MAX_AGE
    return {'question': text, 'id': challenge_id, 'expires': expires,
            # ``sig`` vouches for the id and expiry, ``mac`` binds the answer to them.
            'sig': _mac(request.registry, 'challenge', challenge_id, expires),
            'mac': _answer_mac(request.registry, challenge_id, expires, answer)}


def _same(expected, given):
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged field).
    return hmac.compare_digest(expected.encode('utf-8'), given.encode('utf-8', 'replace'))


def used_challenges(root):
    return root.used_challenges


def check_builtin(request, params, now=None):
    """None if the answer is right, else what to tell the user.  Uses up the challenge."""
    now = time.time() if now is None else now
    challenge_id = params.get('captcha_id', '')
    try:
        expires = int(params.get('captcha_expires', ''))
    except ValueError:
        return 'Answer the question below.'
    sig = params.get('captcha_sig', '')
    mac = params.get('captcha_mac', '')
    answer = params.get('captcha_answer', '')
    if not challenge_id or len(challenge_id) > 64 or not mac:
        return 'Answer the question below.'
    # The id and expiry must be ours before anything is written for them.
    if not _same(_mac(request.registry, 'challenge', challenge_id, expires), sig):
        return 'Answer the question below.'
    if expires < now:
        return 'The question expired; answer the new one.'
    used = used_challenges(request.root)
    if challenge_id in used:
        return 'That question was already answered; answer the new one.'
    used[challenge_id] = expires
    if random.random() < 0.05:
        for key in [k for k, v in used.items() if v < now]:
            del used[key]
    if not _same(_answer_mac(request.registry, challenge_id, expires, answer), mac):
        return 'The answer to the question is wrong.'
    return None


def hosted_widget(request, which):
    script, css_class, _, _ = HOSTED[which]
    return {'script': script, 'css_class': css_class,
            'site_key': request.registry.settings.get('sagenb.signup.captcha_site_key', '')}


def check_hosted(request, which, params):
    """None if the provider says the response is good, else what to tell the user.

    Raises ``CaptchaUnavailable`` when the verify service cannot be asked."""
    settings = request.registry.settings
    _, _, field, default_url = HOSTED[which]
    token = params.get(field, '')
    if not token:
        return 'Complete the challenge.'
    secret = settings.get('sagenb.signup.captcha_secret') or ''
    if not secret:
        raise CaptchaUnavailable('the captcha secret is not set (SAGENB_SIGNUP_CAPTCHA_SECRET)')
    url = (settings.get('sagenb.signup.captcha_verify_url') or '').strip() or default_url
    fields = {'secret': secret, 'response': token}
    if request.client_addr:
        fields['remoteip'] = request.client_addr
    site_key = settings.get('sagenb.signup.captcha_site_key') or ''
    if which == 'hcaptcha' and site_key:
        fields['sitekey'] = site_key
    data = urllib.parse.urlencode(fields).encode('ascii')
    timeout = settings['sagenb.signup.captcha_timeout']
    try:
        with urllib.request.urlopen(urllib.request.Request(
                url, data=data, method='POST',
                headers={'Content-Type': 'application/x-www-form-urlencoded'}),
                timeout=timeout) as response:
            result = json.loads(response.read(65536).decode('utf-8'))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise CaptchaUnavailable('the captcha service did not answer: %s' % exc) from None
    if not isinstance(result, dict):
        raise CaptchaUnavailable('the captcha service gave an answer that is not JSON object')
    if result.get('success') is True:
        return None
    return 'The challenge was not passed; try again.'


def template_data(request):
    """What ``signup.jinja2`` needs to show the challenge."""
    which = kind(request)
    data = {'kind': which}
    if which == 'builtin':
        data['builtin'] = new_builtin(request)
    elif which in HOSTED:
        data['hosted'] = hosted_widget(request, which)
    return data


def check(request, params):
    """None if the challenge of the configured kind is passed, else a message."""
    which = kind(request)
    if which == 'none':
        return None
    if which == 'builtin':
        return check_builtin(request, params)
    return check_hosted(request, which, params)
