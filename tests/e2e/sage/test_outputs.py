"""Real Sage through the JSON API, what a cell gives: results, typesetting, plots,
errors, streams in order from threads and child processes, formatters, top-level await."""
import base64

from ipykernel.thread import SHELL_CHANNEL_THREAD_NAME

from ...support.sage import kernel_of, plain, proc_numbers, run


def test_factor(api, worksheet):
    cell = run(api, worksheet, 'factor(2^64-1)')
    assert cell['status'] == 'done', cell
    assert plain(cell) == '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
    assert cell['execution_count'] == 1


def test_execution_counts_with_and_without_a_result(api, worksheet):
    # The count comes with the result, or (no result) with the kernel's reply.
    assert run(api, worksheet, 'a = 1')['execution_count'] == 1
    assert run(api, worksheet, 'print(a)')['execution_count'] == 2
    assert run(api, worksheet, 'a + 1')['execution_count'] == 3
    failed = run(api, worksheet, '1/0')
    assert failed['status'] == 'error' and failed['execution_count'] == 4


def test_preparser(api, worksheet):
    assert plain(run(api, worksheet, '2^10')) == '1024'
    assert plain(run(api, worksheet, '1/3+1/6')) == '1/2'
    assert plain(run(api, worksheet, 'f(x)=x^2\nf(3)')) == '9'


def test_plot_is_an_image(api, worksheet):
    cell = run(api, worksheet, 'plot(sin(x),(x,0,6))')
    assert cell['status'] == 'done', cell
    images = [o['data']['image/png'] for o in cell['outputs'] if 'image/png' in o.get('data', {})]
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(b'\x89PNG\r\n\x1a\n')


def test_error_has_traceback(api, worksheet):
    cell = run(api, worksheet, '1/0')
    assert cell['status'] == 'error'
    [error] = cell['outputs']
    assert error['output_type'] == 'error'
    assert error['ename'] == 'ZeroDivisionError'
    assert any('ZeroDivisionError' in line for line in error['traceback'])


def test_typeset_toggle(api, worksheet):
    cell = run(api, worksheet, 'integrate(sin(x)^2, x)')
    data = cell['outputs'][0]['data']
    assert data['text/plain'] == '1/2*x - 1/4*sin(2*x)'
    assert '\\frac{1}{2}' in data['text/latex']
    api.patch(worksheet, {'typeset': False}, status=200)
    cell = run(api, worksheet, 'integrate(sin(x)^2, x)')
    assert set(cell['outputs'][0]['data']) == {'text/plain'}


def test_typeset_results_reuse_the_latex_macros(api, worksheet):
    """Sage makes its LaTeX macros from Sage objects for every typeset result; a forked
    kernel makes them once, and again when their list changes (workers/sagekernel.py)."""
    code = ("from sage.misc import latex_macros as m\n"
            "from sage.misc.latex import LatexExpr\n"
            "show = lambda tex: str(html(LatexExpr(tex), strict=True))\n"
            "made = []\n"
            "produce = m.produce_latex_macro\n"
            "m.produce_latex_macro = lambda *a: made.append(a) or produce(*a)\n"
            "first = show(r'\\ZZ'), show(r'\\GF{7}')\n"
            "before = len(made)\n"
            "m.macros.append(['SR'])\n"
            "changed = show(r'\\ZZ')\n"
            "m.macros.pop(); m.produce_latex_macro = produce\n"
            "print(before, len(made) == len(m.macros) + 1, first[0] == changed)\n"
            "first")
    cell = run(api, worksheet, code)
    assert cell['outputs'][0]['text'] == '0 True True\n'
    html_zz, html_gf = eval(cell['outputs'][-1]['data']['text/plain'])
    assert '\\newcommand{\\ZZ}{\\Bold{Z}}' in html_zz
    assert '\\newcommand{\\GF}[1]{\\Bold{F}_{#1}}' in html_gf


def test_streams_and_stderr(api, worksheet):
    cell = run(api, worksheet, 'import sys\nprint("out")\nprint("err", file=sys.stderr)')
    streams = {o['name']: o['text'] for o in cell['outputs']}
    assert streams == {'stdout': 'out\n', 'stderr': 'err\n'}


def test_flushed_text_arrives_in_order_even_from_threads(api, worksheet):
    """Worker kernels skip flushes with nothing to send (workers/sagekernel.py): what
    was written still arrives, in order."""
    code = ('import sys, threading\n'
            'sys.stdout.flush(); sys.stderr.flush()\n'  # nothing to send
            "print('a', end=''); sys.stdout.flush()\n"
            "t = threading.Thread(target=lambda: print('b', end='')); t.start(); t.join()\n"
            "sys.stdout.flush(); print('c')\n"
            "type(sys.stdout).__module__")
    cell = run(api, worksheet, code)
    assert [o['text'] for o in cell['outputs'] if o['output_type'] == 'stream'] == ['abc\n']
    assert cell['outputs'][-1]['data']['text/plain'] == "'sagenb_pyramid.workers.sagekernel'"


def test_outputs_of_the_main_thread_and_other_threads_arrive_in_order(api, worksheet):
    """The main thread sends its own IOPub messages; other threads' messages and the
    text of the streams go through ipykernel's IOPub thread (workers/sagekernel.py)."""
    code = ("import sys, threading\nfrom IPython.display import display, Markdown\n"
            "print('a')\ndisplay(Markdown('m1'))\n"
            "t = threading.Thread(target=lambda: (print('t'), display(Markdown('m2'))))\n"
            "t.start(); t.join()\n"
            "print('b')\ndisplay(Markdown('m3'))\nprint('c', file=sys.stderr)\n7")
    cell = run(api, worksheet, code)
    seen = [o.get('text') or o.get('data', {}).get('text/markdown') or
            o['data']['text/plain'] for o in cell['outputs']]
    assert seen == ['a\n', 'm1', 't\n', 'm2', 'b\n', 'm3', 'c\n', '7']


def test_output_of_processes_the_cell_starts_arrives(api, worksheet):
    """A forked child's IOPub messages go through ipykernel's pipe to the kernel.

    ipykernel sends each write of a forked child as a message of its own, so the two
    children's lines are each written whole: ``print('worker', i)`` writes four pieces,
    which the two processes may interleave."""
    code = ("import sys\nfrom multiprocessing import Pool\ndef f(i):\n"
            "    sys.stdout.write('worker %d\\n' % i)\n"
            "    return i*i\nwith Pool(2) as p: r = p.map(f, [1, 2])\nr")
    cell = run(api, worksheet, code)
    text = ''.join(o['text'] for o in cell['outputs'] if o['output_type'] == 'stream')
    assert sorted(text.splitlines()) == ['worker 1', 'worker 2']
    assert cell['outputs'][-1]['data']['text/plain'] == '[1, 4]'


def thread_wakeups(pid, tid):
    return proc_numbers('/proc/%d/task/%d/status' % (pid, tid))['voluntary_ctxt_switches']


def test_the_iopub_thread_does_not_wake_for_the_main_threads_messages(
        api, sage_notebook, worksheet):
    """ipykernel hands every IOPub message to its IOPub thread; a worker kernel's main
    thread sends a cell's result and "idle" itself (workers/sagekernel.py)."""
    tid = int(plain(run(api, worksheet, 'import threading\n[t.native_id for t in '
                                        "threading.enumerate() if t.name == 'IOPub'][0]")))
    pid = kernel_of(sage_notebook, worksheet).pid
    cell = api.post(worksheet + 'cells', {'input': '1+1'}, status=201)['id']
    url = '%scells/%d/evaluate' % (worksheet, cell)
    before = thread_wakeups(pid, tid)
    for _ in range(100):
        assert api.post(url, {'wait': 60}, status=200)['status'] == 'done'
    # Handed over, two messages a cell woke it about 240 times.
    woke = thread_wakeups(pid, tid) - before
    assert woke < 20, woke


def test_formatters_registered_by_a_cell_are_used(api, worksheet):
    """A forked kernel looks printers up in IPython's tables its own, faster way
    (workers/sagekernel.py): by type along the MRO, by name (deferred, then moved to
    the table of types), and not once removed."""
    api.patch(worksheet, {'typeset': False}, status=200)
    run(api, worksheet, "class Base: pass\n"
                        "class Child(Base): pass\n"
                        "f = get_ipython().display_formatter.formatters['text/html']\n"
                        "f.for_type(Base, lambda o: '<b>base</b>')\n"
                        "f.for_type_by_name('__main__', 'Later', lambda o: '<i>later</i>')\n"
                        "class Later: pass")

    def html_of(code):
        return run(api, worksheet, code)['outputs'][-1]['data'].get('text/html')

    assert html_of('Child()') == '<b>base</b>'
    assert html_of('Later()') == '<i>later</i>'
    assert plain(run(api, worksheet, "Later in f.type_printers, "
                                     "('__main__', 'Later') in f.deferred_printers")) == \
        '(True, False)'
    assert html_of("f.pop(Base); Child()") is None
    assert html_of('1/2') is None and plain(run(api, worksheet, '1/2')) == '1/2'


def test_a_cell_is_transformed_once_and_the_next_cell_sees_what_it_changed(
        api, worksheet):
    """ipykernel and IPython's ``run_cell`` each transformed every cell; a forked kernel
    keeps the first answer for the second call of the same request
    (workers/sagekernel.py), and never for the next cell."""
    run(api, worksheet, "m = get_ipython().input_transformer_manager\n"
                        "seen = []\n"
                        "m.transform_cell = lambda cell: seen.append(cell) or "
                        "type(m).transform_cell(m, cell)")
    assert plain(run(api, worksheet, 'type(1)')) == "<class 'sage.rings.integer.Integer'>"
    cell = run(api, worksheet, "del m.transform_cell\nseen[0]")
    assert plain(cell) == "'type(1)'"
    assert plain(run(api, worksheet, 'len(seen)')) == '2'  # type(1) and the cell above
    # A cell that turns the preparser off changes how the next one is read.
    assert plain(run(api, worksheet, 'preparser(False)\n2^3')) == '8'  # read before
    assert plain(run(api, worksheet, '2^3')) == '1'  # exclusive or
    assert plain(run(api, worksheet, 'preparser(True)\n2^3')) == '1'
    assert plain(run(api, worksheet, '2^3')) == '8'
    assert plain(run(api, worksheet, 'import asyncio\nawait asyncio.sleep(0)\n2^3')) == '8'


def test_the_kernel_builds_no_log_records_that_nobody_writes(api, worksheet):
    """ipykernel logs every request at DEBUG; a forked kernel's logger drops those
    calls at once instead of building records its handler then drops."""
    run(api, worksheet, "import logging\n"
                        "made = []\n"
                        "factory = logging.getLogRecordFactory()\n"
                        "logging.setLogRecordFactory("
                        "lambda *a, **k: made.append((a[0], a[1])) or factory(*a, **k))")
    run(api, worksheet, '1+1')
    cell = run(api, worksheet, "get_ipython().kernel.log.warning('still written')\n"
                               "logging.setLogRecordFactory(factory)\n"
                               "[m for m in made if m[1] < logging.WARNING], "
                               "('WorkerKernelApp', logging.WARNING) in made")
    assert plain(cell) == '([], True)'  # on ipykernel's own: four DEBUG records a cell


def test_top_level_await(api, worksheet):
    """Worker kernels run without ipykernel 7's shell-channel thread
    (workers/sagekernel.py); its path for a cell with a top-level ``await`` still asks
    for that thread."""
    cell = run(api, worksheet, 'import asyncio\nawait asyncio.sleep(0.01)\n6*7')
    assert cell['status'] == 'done' and plain(cell) == '42'
    names = plain(run(api, worksheet, 'import threading\n'
                                      'print([t.name for t in threading.enumerate()])'))
    assert 'MainThread' in names and SHELL_CHANNEL_THREAD_NAME not in names


def test_a_request_the_kernel_fails_to_handle_is_an_error(api, worksheet):
    """ipykernel logs an exception of its own handler and sends "idle" without a reply;
    the cell says so instead of looking done.  Here user code breaks the kernel's
    insides, so that its path for a top-level ``await`` fails."""
    assert run(api, worksheet, 'get_ipython().kernel.shell_channel_thread = None')[
        'status'] == 'done'
    cell = run(api, worksheet, 'import asyncio\nawait asyncio.sleep(0)')
    assert cell['status'] == 'error'
    assert cell['outputs'][-1]['ename'] == 'KernelError'
    assert 'sent no reply' in cell['outputs'][-1]['evalue']
    assert plain(run(api, worksheet, '1+1')) == '2'  # other cells still run
