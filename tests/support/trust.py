"""The XSS battery of the browser tests (tests/browser/test_trust.py, and the sharing
and publishing ones): a loopback listener that records what payloads fetch, a recorder
of the requests the viewer's page makes, the payloads, and how a worksheet is viewed and
clicked and what counts as "nothing ran"."""
import http.server

VIEW_MIME = 'application/vnd.jupyter.widget-view+json'


class Listener(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that records every request made to it."""

    daemon_threads = True

    def __init__(self):
        self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_any(handler):
                self.hits.append((handler.command, handler.path))
                handler.send_response(204)
                handler.send_header('Access-Control-Allow-Origin', '*')
                handler.end_headers()

            do_GET = do_POST = do_HEAD = do_OPTIONS = do_any

            def log_message(handler, *args):
                pass

        super().__init__(('127.0.0.1', 0), Handler)
        self.port = self.server_address[1]


class Recorder:
    """WSGI middleware: every request the notebook gets, with whether it carried a
    session cookie."""

    def __init__(self, app):
        self.app = app
        self.requests = []

    def __call__(self, environ, start_response):
        self.requests.append((environ['REQUEST_METHOD'], environ.get('PATH_INFO', ''),
                              'sagenb_session=' in environ.get('HTTP_COOKIE', '')))
        return self.app(environ, start_response)


class Battery:
    """The payloads, each named by a tag the listener and the marker would show."""

    def __init__(self, port):
        self.port = port

    def js(self, tag):
        # No braces, no '#' and no '%': the same text must survive TeX and Markdown.
        return ("fetch('//127.0.0.1:%d/hit/js-%s');window.__pwned='%s';"
                "x=new XMLHttpRequest;x.open('POST','/admin/users/mallory/grant_admin');"
                "x.setRequestHeader('X-CSRF-Token',"
                "document.querySelector('meta[name=csrf-token]').content);x.send()"
                % (self.port, tag, tag))

    def load(self, tag):
        return '//127.0.0.1:%d/hit/load-%s' % (self.port, tag)

    def overlay(self, inner):
        return ('<div style="position:fixed;top:0;left:0;width:100vw;height:100vh;'
                'z-index:100000;opacity:0.01">%s</div>' % inner)

    def tex(self, tag):
        """TeX that made live javascript: links, styles and ids (the html package)."""
        js = self.js(tag)
        return [
            r'$\href{javascript:%s}{\text{TeX link}}$' % js,
            r'$$\href{javascript:%s}{\rule{3000px}{3000px}}$$' % js,
            r'$\require{html}\href{javascript:%s}{\text{required}}$' % js,
            r'$\style{position:fixed;top:0;left:0;width:5000px;height:5000px}{\text{style}}$',
            r'$\cssId{worksheet}{\text{clobber}}\class{ws-actions}{x}$',
        ]

    def html(self, tag):
        """HTML, SVG and MathML that tried to run script or load from elsewhere."""
        js = self.js(tag)
        return [
            '<img src="x" onerror="%s">' % js,
            '<svg onload="%s"><script>%s</script></svg>' % (js, js),
            '<svg><a xlink:href="javascript:%s"><text y="20">SVG link</text></a></svg>' % js,
            '<svg><animate attributeName="href" to="javascript:%s"/></svg>' % js,
            '<math><mi xlink:href="javascript:%s">MathML link</mi></math>' % js,
            '<math><mtext><table><mglyph><style><img src=x onerror="%s">' % js,
            '</style></mglyph></table></mtext></math>',
            '<a href="javascript:%s">HTML link</a>' % js,
            '<a href="jav&#x09;ascript:%s">tab link</a>' % js,
            '<iframe srcdoc="<script>%s</script>"></iframe>' % js.replace('"', '&quot;'),
            '<form action="javascript:%s"><button>form</button></form>' % js,
            '<details open ontoggle="%s"><summary>d</summary></details>' % js,
            '<object data="javascript:%s"></object><embed src="javascript:%s">' % (js, js),
            '<script>%s</script>' % js,
            '<img src="%s">' % self.load('img'),
            '<div style="background:url(%s)">css</div>' % self.load('css'),
            '<style>@import "%s";</style>' % self.load('style'),
            '<link rel="stylesheet" href="%s">' % self.load('link'),
            '<a href="/x" ping="%s">ping</a>' % self.load('ping'),
            '<video poster="%s"></video>' % self.load('poster'),
        ]

    def markdown(self, tag):
        return [
            "[Markdown link](javascript:window.__pwned='md-%s')" % tag,
            '![Markdown image](x" onerror="%s)' % self.js(tag + '-mdimg'),
        ]

    def text(self, tag):
        return '\n\n'.join(self.tex(tag + '-tex') + self.html(tag + '-html')
                           + self.markdown(tag) + [self.overlay(
                               r'$$\href{javascript:%s}{\rule{3000px}{3000px}}$$'
                               % self.js(tag + '-overlay'))])

    def outputs(self, tag):
        js = self.js(tag)
        return [
            {'output_type': 'display_data', 'metadata': {}, 'data': {
                'text/latex': r'\href{javascript:%s}{\text{latex output}}' % js}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {
                'text/latex': r'$\href{javascript:%s}{\text{latex text}}$ and $x$' % js}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {
                'text/markdown': '\n\n'.join(self.html(tag + '-md')
                                             + self.tex(tag + '-mdtex'))}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {
                'text/html': '<b>html output</b><script>%s</script>'
                             '<img src=x onerror="%s">' % (js, js)}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {
                'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg" onload="%s">'
                                 '<script>%s</script></svg>' % (js, js)}},
        ]

    def actions(self):
        """Page actions planted in content: one click would have deleted every output."""
        return '\n\n'.join(
            '<div data-action="%s" style="position:fixed;top:0;left:0;width:100vw;'
            'height:100vh;z-index:200000;opacity:0.01">%s</div>' % (action, action)
            for action in ('clear-all', 'restart', 'evaluate-all'))


def outputs_of(site, path):
    """The stored outputs of every cell of the worksheet at ``path``."""
    _, _, login, number, _ = path.split('/', 4)
    with site['nb'].transaction() as root:
        ws = root.user_by_login(login)[number]
        return [list(c.output.outputs) for c in ws.ordered_cells()]


PAGE_OWN = ('/static/', '/nbextensions/', '/favicon.ico')


def view_and_click(site, listener, page, path, worksheet=None):
    """Open the page at ``path`` (a worksheet, or ``/pub/<id>/`` showing ``worksheet``'s
    content), wait for its content to render, click once in the middle of the page and
    then on every link of the rendered content; report what happened."""
    base, recorder = site['base'], site['recorder']
    worksheet = worksheet or path
    before = outputs_of(site, worksheet)
    del recorder.requests[:]
    del listener.hits[:]
    page.goto(base + path)
    page.wait_for_function(
        "() => document.getElementById('worksheet').dataset.ready === 'true'")
    # Content that shows MathJax has been typeset: the payloads went through it.
    page.locator('.text-rendered mjx-container').first.wait_for()
    page.wait_for_timeout(1500)
    size = page.viewport_size
    page.mouse.click(size['width'] // 2, size['height'] // 2)
    page.wait_for_timeout(300)
    # Then every link that leads nowhere else and every planted page action of the
    # content, clicked where it is (a click event on the element: overlays cannot take
    # it).  Links to pages (http, https) would only take the viewer there.
    page.evaluate("""() => {
      const sel = '#cells a, .text-rendered [data-action], .output [data-action], ' +
                  '.widget-area [data-action]';
      for (const el of Array.from(document.querySelectorAll(sel))) {
        const href = el.getAttribute('href') || el.getAttribute('xlink:href');
        if (href !== null) {
          let url = null;
          try { url = new URL(href, document.baseURI); } catch (err) { url = null; }
          if (url && (url.protocol === 'http:' || url.protocol === 'https:')) continue;
        }
        el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
      }
    }""")
    page.wait_for_timeout(1000)
    markers = []
    for frame in page.frames:
        try:
            value = frame.evaluate('window.__pwned')
        except Exception:  # a frame that went away
            continue
        if value is not None:
            markers.append((frame.url, value))
    with site['nb'].transaction() as root:
        mallory_admin = root.user_by_login('mallory').is_admin
    own_requests = [(m, p) for m, p, cookie in recorder.requests
                    if cookie and not p.startswith(PAGE_OWN)]
    # The page's own heartbeat says the viewer has the worksheet open (presence): the one
    # write a viewing page makes, and all it can do is mark its own visitor there.
    foreign = [(m, p) for m, p in own_requests
               if not (m == 'GET' and (p == path or p.startswith(path)))
               and not (m == 'POST' and p == path.rstrip('/') + '/presence')]
    return {'markers': markers, 'hits': list(listener.hits), 'mallory_admin': mallory_admin,
            'foreign_requests': foreign, 'outputs_kept': outputs_of(site, worksheet) == before,
            'page': page}


def assert_nothing_ran(result):
    problems = {key: result[key] for key in ('markers', 'hits', 'foreign_requests')
                if result[key]}
    if result['mallory_admin']:
        problems['mallory_admin'] = True
    if not result['outputs_kept']:
        problems['outputs_kept'] = False
    assert not problems, problems


def payload_worksheet(battery, user, tag):
    """A worksheet of ``user`` full of the battery's payloads (its name, a stored output,
    a Markdown and an HTML text cell, planted page actions), each marked ``tag``; the
    smaller battery of the sharing and publishing tests."""
    ws = user.create_worksheet('<img src=x onerror="%s">' % battery.js('wsname'))
    first = ws.ordered_cells()[0]
    first.input = '1 + 1'
    first.output.update('done', battery.outputs(tag + '-out'), execution_count=1)
    ws.add_cell('text', battery.text(tag + '-md'))
    legacy = ws.add_cell('text', battery.text(tag + '-html'))
    legacy.format = 'html'
    ws.add_cell('text', battery.actions())
    return ws
