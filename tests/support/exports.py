"""The worksheet of the export tests (tests/functional/transfer/test_exports.py,
tests/browser/test_exports.py): text cells (Markdown with HTML, a script tag and math; a
legacy HTML cell), compute cells with percent directives, a plot, typeset results, an
error, and optionally the payload battery's outputs and text (support/trust.py)."""
import base64
import struct
import zlib


def png(width=3, height=2):
    """A real PNG image (red pixels)."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data) & 0xffffffff)
    rows = b''.join(b'\x00' + b'\xff\x00\x00' * width for _ in range(height))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height,
                                                              8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


PNG = png()
MARKDOWN = ('# Results of $x_1$\n\nSome **bold** text, <b>raw HTML</b> and '
            '<script>window.__pwned="md"</script>, with $a_1 * b_2$ and\n\n'
            '$$\\int_0^1 x\\,dx$$\n\n\\input{/etc/passwd} ~ 100% & #1')
LEGACY = '<p>A sagenb cell with $\\sqrt{2}$ &amp; <i>italics</i></p>' \
         '<img src="x" onerror="window.__pwned=1">'
CELLS = [
    ('text', MARKDOWN),
    ('compute', 'factor(2^64-1)', [
        {'output_type': 'execute_result', 'execution_count': 1, 'metadata': {},
         'data': {'text/plain': '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'}}]),
    ('compute', '%python\nprint(2**10)\n7/2', [
        {'output_type': 'stream', 'name': 'stdout', 'text': '1024\n'},
        {'output_type': 'execute_result', 'execution_count': 2, 'metadata': {},
         'data': {'text/plain': '3.5'}}]),
    ('compute', '%hide\n%time\nx = 3\n%display plain\nx^2', []),
    ('compute', '%gp\nfactor(91)', [
        {'output_type': 'stream', 'name': 'stdout', 'text': '\n[7 1]\n\n[13 1]\n'}]),
    ('compute', '%html\n<b>shown by the notebook</b>', []),
    ('compute', 'plot(sin(x), (x, 0, 6))', [
        {'output_type': 'display_data', 'metadata': {},
         'data': {'image/png': base64.b64encode(PNG).decode(),
                  'text/plain': 'Graphics object consisting of 1 graphics primitive'}}]),
    ('compute', 'integrate(x^2, x)', [
        {'output_type': 'execute_result', 'execution_count': 5, 'metadata': {},
         'data': {'text/latex': '$\\displaystyle \\frac{1}{3} \\, x^{3}$',
                  'text/html': '<html>\\(\\displaystyle \\frac{1}{3} \\, x^{3}\\)</html>',
                  'text/plain': '1/3*x^3'}}]),
    ('compute', 'ZZ', [
        {'output_type': 'execute_result', 'execution_count': 6, 'metadata': {},
         'data': {'text/html': '<html>\\[\\Bold{Z}\\]</html>', 'text/plain':
                  'Integer Ring'}}]),
    ('compute', '1/0', [
        {'output_type': 'error', 'ename': 'ZeroDivisionError',
         'evalue': 'rational division by zero',
         'traceback': ['\x1b[0;31mZeroDivisionError\x1b[0m: rational division by zero']}]),
]


def build(root, login='alice', battery=None):
    """The test worksheet of ``login``: CELLS, the legacy cell and, with ``battery``,
    its outputs in one more cell.  Its URL path."""
    ws = root.user_by_login(login).create_worksheet('Exports <test>')
    ws.typeset = True
    first = ws.ordered_cells()[0]
    for k, spec in enumerate(CELLS):
        cell = first if k == 0 else ws.add_cell(spec[0], spec[1])
        if k == 0:
            cell.type, cell.input = spec[0], spec[1]
        if spec[0] == 'compute' and spec[2]:
            cell.output.update('done', spec[2], execution_count=k)
    legacy = ws.add_cell('text', LEGACY)
    legacy.format = 'html'
    if battery is not None:
        cell = ws.add_cell('compute', '1 + 1')
        cell.output.update('done', battery.outputs('export'), execution_count=99)
        ws.add_cell('text', battery.text('export-md'))
    return '/home/%s/%s/' % (login, ws.__name__)
