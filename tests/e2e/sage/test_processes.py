"""Real Sage through the JSON API, the processes: running and awaited cells, the
commit news, interrupt and restart, limits, idle and dying processes, memory, sockets."""
import os
import stat
import threading
import time

import pytest

from sagenb_pyramid.settings import SettingsError

from ...support.notebook import Notebook
from ...support.sage import (
    evaluate_later, interrupt_a_loop, kernel_of, own_notebook, plain, proc_numbers, run,
    wait_status)


def test_a_cell_awaited_by_its_request_shows_as_running_to_others(api, worksheet):
    """Its queued state may wait for the result (workers/store.py), but not for long: a
    slow cell is seen running by everyone else meanwhile."""
    cell = api.post(worksheet + 'cells', {'input': 'sleep(1.5r); 7'}, status=201)['id']
    url = '%scells/%d' % (worksheet, cell)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(
        api.post(url + '/evaluate', {'wait': 30}, status=200)))
    waiter.start()
    time.sleep(0.8)
    assert api.get(url)['status'] in ('queued', 'running')
    waiter.join(30)
    assert answers[0]['status'] == 'done' and plain(answers[0]) == '7'


def test_an_awaiting_request_looks_at_its_cell_only_after_news(api, worksheet,
                                                                monkeypatch):
    """The request watches the cell's output before it commits (the job leaves then), so
    it neither misses the news of the result nor looks at the cell right after the
    commit, when it is sure to be still queued (views/cells.py)."""
    from ZODB.Connection import Connection

    from sagenb_pyramid.workers.news import CommitNews
    me = threading.get_ident()
    begun, woken = [], []
    new_transaction, watch = Connection.newTransaction, CommitNews.watch

    def counting_new_transaction(self, *args, **kwargs):
        if threading.get_ident() == me:
            begun.append(1)
        return new_transaction(self, *args, **kwargs)

    def recording_watch(self, oid, event=None):
        event = watch(self, oid, event)
        wait = event.wait

        def recording_wait(timeout=None):
            answer = wait(timeout)
            if threading.get_ident() == me:
                woken.append(answer)
            return answer
        event.wait = recording_wait
        return event

    monkeypatch.setattr(Connection, 'newTransaction', counting_new_transaction)
    monkeypatch.setattr(CommitNews, 'watch', recording_watch)
    cell = api.post(worksheet + 'cells', {'input': '1+1'}, status=201)['id']
    url = '%scells/%d/evaluate' % (worksheet, cell)
    assert plain(api.post(url, {'wait': 60}, status=200)) == '2'  # the process is warm
    # Transactions of a request that does not wait: the base.
    del begun[:]
    assert api.post(url, {}, status=200)['status'] in ('queued', 'running', 'done')
    base = len(begun)
    assert api.get(url[:-len('/evaluate')] + '?wait=30', status=200)['status'] == 'done'
    del begun[:], woken[:]
    assert plain(api.post(url, {'wait': 60}, status=200)) == '2'
    assert woken[0] is True  # the news woke it, not the half-second fallback
    assert len(begun) - base == len(woken)  # one look after each news, none before


def test_the_next_cell_runs_while_the_last_result_is_being_committed(
        api, worksheet, monkeypatch, tmp_path):
    """The worksheet's thread queues a cell's final outputs and takes its next cell at
    once (WorkerRegistry.store); the outputs are still stored in order."""
    from sagenb_pyramid.workers.store import OutputStore
    assert plain(run(api, worksheet, '1+1')) == '2'  # the process is warm
    # The first cell lasts long enough for the second to be queued behind it: a queued
    # state is committed by the same store, so it would wait behind the held commit.
    first = api.post(worksheet + 'cells', {'input': 'sleep(2); 11'}, status=201)['id']
    marker = tmp_path / 'second-ran'
    second = api.post(worksheet + 'cells', {'input': 'open(%r, "w").write("ran"); 22'
                                            % str(marker)}, status=201)['id']
    release, held = threading.Event(), threading.Event()
    commit = OutputStore._commit

    def holding_commit(self, tm, conn, batch):
        if any(u.job.cell_id == first and u.finished is not None for u in batch):
            held.set()
            release.wait(120)
        return commit(self, tm, conn, batch)

    monkeypatch.setattr(OutputStore, '_commit', holding_commit)
    try:
        for cell in (first, second):
            api.post('%scells/%d/evaluate' % (worksheet, cell), {}, status=200)
        assert held.wait(30)
        deadline = time.monotonic() + 10  # a new cell answers in milliseconds
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), 'the second cell waited for the commit of the first'
    finally:
        release.set()
    assert plain(wait_status(api, worksheet, first, ('done',))) == '11'
    assert plain(wait_status(api, worksheet, second, ('done',))) == '22'
    assert api.get('%scells/%d' % (worksheet, first))['outputs'][0]['execution_count'] < \
        api.get('%scells/%d' % (worksheet, second))['outputs'][0]['execution_count']


def test_interrupt_stops_a_loop_within_two_seconds(api, worksheet):
    assert interrupt_a_loop(api, worksheet) < 2.0
    # The process survives an interrupt: its state is still there.
    assert plain(run(api, worksheet, '1+1')) == '2'


def test_restart_clears_variables(api, worksheet):
    assert run(api, worksheet, 'a = 5\na')['status'] == 'done'
    assert api.post(worksheet + 'restart', status=200)['ok'] is True
    cell = run(api, worksheet, 'a')
    assert cell['status'] == 'error'
    assert cell['outputs'][0]['ename'] == 'NameError'


def test_restart_cancels_queued_cells(api, worksheet):
    slow = api.post(worksheet + 'cells', {'input': 'sleep(30)'}, status=201)['id']
    queued = api.post(worksheet + 'cells', {'input': '2+2'}, status=201)['id']
    api.post('%scells/%d/evaluate' % (worksheet, slow), {}, status=200)
    api.post('%scells/%d/evaluate' % (worksheet, queued), {}, status=200)
    wait_status(api, worksheet, slow, ('running',))
    assert api.post(worksheet + 'restart', status=200)['cancelled'] == 1
    assert wait_status(api, worksheet, slow, ('error',))['outputs'][-1]['ename'] == 'Restarted'
    assert wait_status(api, worksheet, queued, ('error',))['outputs'][-1]['ename'] == 'NotRun'


def test_output_printed_with_no_client_is_stored(api, sage_notebook, worksheet):
    code = 'for i in range(3):\n    print(i)\n    sleep(0.4r)'
    cell = api.post(worksheet + 'cells', {'input': code}, status=201)['id']
    api.post('%scells/%d/evaluate' % (worksheet, cell), {'wait': 0}, status=200)
    # Nobody asks while it runs; the worker stores the outputs anyway.
    time.sleep(3)
    number = int(worksheet.rstrip('/').rsplit('/', 1)[1])
    with sage_notebook.transaction() as root:
        stored = root.user_by_login('alice')[str(number)].cells[str(cell)].output
        assert stored.status == 'done', stored.outputs
        assert stored.outputs == [{'output_type': 'stream', 'name': 'stdout',
                                   'text': '0\n1\n2\n'}]


def test_outputs_arrive_while_the_cell_runs(api, worksheet):
    code = 'for i in range(4):\n    print(i)\n    sleep(0.5r)'
    cell = api.post(worksheet + 'cells', {'input': code}, status=201)['id']
    first = api.post('%scells/%d/evaluate' % (worksheet, cell), {'wait': 0}, status=200)
    seen, version = [], first['version']
    while True:
        now = api.get('%scells/%d' % (worksheet, cell), since=version, wait=10)
        assert now['version'] > version or now['status'] == 'done'
        version = now['version']
        seen.append(plain(now))
        if now['status'] == 'done':
            break
    assert seen[-1] == '0\n1\n2\n3\n'
    # Partial output was visible before the end: the lines came one by one.
    assert any(text and text != '0\n1\n2\n3\n' for text in seen[:-1]), seen


def test_evaluate_all_runs_in_order(api, worksheet):
    for code in ('b = 2', 'b = b * 10', 'b + 1'):
        api.post(worksheet + 'cells', {'input': code}, status=201)
    queued = api.post(worksheet + 'evaluate_all', status=200)['queued']
    assert len(queued) == 3
    last = wait_status(api, worksheet, queued[-1], ('done', 'error'))
    assert plain(last) == '21'


def test_wait_is_capped_and_answers_when_done(api, worksheet):
    started = time.monotonic()
    cell = run(api, worksheet, '1+1', wait=50)
    assert cell['status'] == 'done'
    # The answer comes as soon as the cell finishes, not after the full wait.
    assert time.monotonic() - started < 10


def test_worksheets_have_separate_processes(api):
    one = api.post('/home/alice/', {'name': 'one'}, status=201)['url']
    two = api.post('/home/alice/', {'name': 'two'}, status=201)['url']
    run(api, one, 'secret = 42')
    assert run(api, two, 'secret')['outputs'][0]['ename'] == 'NameError'
    assert plain(run(api, one, 'secret')) == '42'


def test_kernel_channels_are_unix_sockets_in_the_kernels_folder(api, sage_notebook,
                                                                  worksheet):
    """No port to race for or to reach from another user's code."""
    assert plain(run(api, worksheet, '1+1')) == '2'
    kernel = kernel_of(sage_notebook, worksheet)
    assert kernel.client.transport == 'ipc'
    assert kernel.client.ip.startswith(kernel.workdir + '/')
    assert stat.S_ISSOCK(os.stat(kernel.client.ip + '-%d' % kernel.client.shell_port).st_mode)


def memory_of(pid):
    """(private, virtual) memory of a process in kB, from /proc."""
    rollup = proc_numbers('/proc/%d/smaps_rollup' % pid)
    private = rollup['Private_Clean'] + rollup['Private_Dirty']
    return private, proc_numbers('/proc/%d/status' % pid)['VmSize']


def test_a_process_does_not_grow_with_every_request(api, sage_notebook, worksheet):
    """passagemath's kernel sets cysignals up before each request, and each time it
    allocates a signal stack it never frees and starts a thread: about 19 kB of private
    memory and 150 kB of address space per request, against the process's limits
    (workers/sagekernel.py).  A forked kernel does that once."""
    cell = api.post(worksheet + 'cells', {'input': '1+1'}, status=201)['id']
    url = '%scells/%d/evaluate' % (worksheet, cell)
    for _ in range(50):  # IPython's and Sage's caches warm up first
        assert api.post(url, {'wait': 60}, status=200)['status'] == 'done'
    pid = kernel_of(sage_notebook, worksheet).pid
    private, virtual = memory_of(pid)
    for _ in range(600):
        assert api.post(url, {'wait': 60}, status=200)['status'] == 'done'
    assert kernel_of(sage_notebook, worksheet).pid == pid
    now_private, now_virtual = memory_of(pid)
    # Unfixed: 11,480 kB private for 600 requests; fixed: 1,140 kB (IPython's caches).
    assert now_private - private < 4000, (private, now_private)
    assert now_virtual - virtual < 16000, (virtual, now_virtual)


def test_a_data_dir_too_long_for_unix_sockets_falls_back_to_loopback_tcp(tmp_path):
    deep = tmp_path / ('d' * 60) / ('e' * 60)
    with own_notebook(deep, ['long']) as (nb, [api]):
        ws = api.post('/home/long/', {'name': 'deep'}, status=201)['url']
        assert plain(run(api, ws, '3*7')) == '21'
        kernel = kernel_of(nb, ws)
        assert (kernel.client.transport, kernel.client.ip) == ('tcp', '127.0.0.1')
        interrupt_a_loop(api, ws)
    # Without network there is no such way out: the server says so at start.
    with pytest.raises(SettingsError, match='too long'):
        Notebook(tmp_path / ('f' * 60) / ('g' * 60), **{'sagenb.workers.network': 'false'})


def test_idle_process_is_stopped(tmp_path):
    with own_notebook(tmp_path / 'idle', ['bob'],
                      **{'sagenb.workers.idle_timeout': '1'}) as (nb, [api]):
        ws = api.post('/home/bob/', {'name': 'idle'}, status=201)['url']
        assert plain(run(api, ws, '1+1')) == '2'
        with nb.transaction() as root:
            key = (root.user_by_login('bob').id, 0)
        assert nb.host.is_running(key)
        deadline = time.monotonic() + 15
        while nb.host.is_running(key) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not nb.host.is_running(key)
        # The next evaluation starts a new process.
        assert plain(run(api, ws, '2+2')) == '4'


def test_running_cell_is_not_idle(tmp_path):
    with own_notebook(tmp_path / 'busy', ['bob'],
                      **{'sagenb.workers.idle_timeout': '1'}) as (nb, [api]):
        ws = api.post('/home/bob/', {'name': 'busy'}, status=201)['url']
        cell = run(api, ws, 'sleep(5); 7', wait=30)
        assert plain(cell) == '7'


def test_long_output_is_cut_and_kept_whole_in_a_file(api, worksheet):
    cell = run(api, worksheet, 'for i in range(100000): print(i)')
    assert cell['status'] == 'done'
    assert {o['output_type'] for o in cell['outputs']} == {'stream'}
    text = ''.join(o['text'] for o in cell['outputs'])
    assert text.startswith('0\n1\n2\n')
    assert len(text) < 32000 + 2200
    assert 'the whole output: cells/%d/output.txt' % cell['id'] in text
    # The last lines are not dropped silently: they show below the marker.
    assert text.endswith('99998\n99999\n')
    whole = api.testapp.get('%scells/%d/output.txt' % (worksheet, cell['id']),
                            headers=api.headers, status=200)
    assert whole.content_type == 'text/plain'
    assert whole.text.split('\n')[:-1] == [str(i) for i in range(100000)]
    # A cell whose output was not cut has nothing to download.
    small = run(api, worksheet, 'print(1)')
    api.testapp.get('%scells/%d/output.txt' % (worksheet, small['id']),
                    headers=api.headers, status=404)


def test_a_flood_keeps_the_server_responsive(api, worksheet):
    other = api.post('/home/alice/', {'name': 'calm'}, status=201)['url']
    assert plain(run(api, other, '1+1')) == '2'
    flood = api.post(worksheet + 'cells', {'input': "while True: print('x' * 100)"},
                     status=201)['id']
    api.post('%scells/%d/evaluate' % (worksheet, flood), {}, status=200)
    wait_status(api, worksheet, flood, ('running',))
    slowest = 0
    for _ in range(10):
        started = time.monotonic()
        assert plain(run(api, other, '2+2')) == '4'
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.2)
    assert slowest < 2.0, slowest
    api.post(worksheet + 'interrupt', status=200)
    cell = wait_status(api, worksheet, flood, ('error',))
    assert cell['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    stream = ''.join(o['text'] for o in cell['outputs'] if o['output_type'] == 'stream')
    assert len(stream) < 32000 + 2200 and 'more characters' in stream


def test_process_limits_per_user_and_per_server(tmp_path):
    settings = {'sagenb.workers.max_per_user': '2', 'sagenb.workers.max_total': '3'}
    with own_notebook(tmp_path / 'limits', ['ann', 'ben'], **settings) as (nb, [ann, ben]):
        sheets = [ann.post('/home/ann/', {'name': str(i)}, status=201)['url'] for i in range(3)]
        assert plain(run(ann, sheets[0], '1')) == '1'
        assert plain(run(ann, sheets[1], '2')) == '2'
        cell = ann.post(sheets[2] + 'cells', {'input': '3'}, status=201)['id']
        refused = ann.post('%scells/%d/evaluate' % (sheets[2], cell), {'wait': 5}, status=409)
        assert 'the most allowed' in refused['error']
        # Nothing was queued by the refused request.
        assert ann.get('%scells/%d' % (sheets[2], cell))['status'] == 'new'
        # A worksheet that runs already goes on.
        assert plain(run(ann, sheets[0], '4')) == '4'
        ben_sheets = [ben.post('/home/ben/', {'name': str(i)}, status=201)['url']
                      for i in range(2)]
        assert plain(run(ben, ben_sheets[0], '5')) == '5'
        cell = ben.post(ben_sheets[1] + 'cells', {'input': '6'}, status=201)['id']
        full = ben.post('%scells/%d/evaluate' % (ben_sheets[1], cell), {}, status=409)
        assert 'the server runs 3' in full['error'].lower()
        # Restart stops a process: its slot is free again.
        ann.post(sheets[1] + 'restart', status=200)
        assert plain(run(ann, sheets[2], '7')) == '7'


def test_spawn_mode_runs_fresh_kernel_processes(tmp_path):
    with own_notebook(tmp_path / 'spawn', ['cy'],
                      **{'sagenb.workers.mode': 'spawn'}) as (nb, [api]):
        assert nb.host.forkserver is None
        ws = api.post('/home/cy/', {'name': 'spawned'}, status=201)['url']
        assert plain(run(api, ws, 'factor(2^64-1)')) == \
            '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
        interrupt_a_loop(api, ws)
        api.post(ws + 'restart', status=200)
        assert run(api, ws, 'factor')['status'] == 'done'


@pytest.mark.parametrize('code, says', [
    ('import os, signal; os.kill(os.getpid(), signal.SIGKILL)', 'killed by SIGKILL'),
    ('import os; os._exit(3)', 'exited with status 3'),
    ('import os; os.abort()', 'killed by SIGABRT (a library gave up'),
])


def test_a_dying_process_says_why_and_queued_cells_do_not_run(api, code, says):
    ws = api.post('/home/alice/', {'name': 'dies'}, status=201)['url']
    assert plain(run(api, ws, 'kept = 1')) == ''
    dying = evaluate_later(api, ws, 'sleep(1); ' + code)
    behind = evaluate_later(api, ws, '2+2')
    other = api.post('/home/alice/', {'name': 'bystander'}, status=201)['url']
    assert plain(run(api, other, '3+3')) == '6'
    died = wait_status(api, ws, dying, ('error',))
    assert died['outputs'][-1]['ename'] == 'WorkerDied'
    assert says in died['outputs'][-1]['evalue']
    not_run = wait_status(api, ws, behind, ('error',))
    assert not_run['outputs'][-1]['ename'] == 'NotRun'
    # The next evaluation starts a fresh process (the old state is gone).
    assert run(api, ws, 'kept')['outputs'][-1]['ename'] == 'NameError'


def test_segfault_in_user_code_is_reported(api, worksheet):
    cell = run(api, worksheet, 'import ctypes; ctypes.string_at(int(0))')
    assert cell['status'] == 'error'
    # cysignals turns the signal into an exception (or the process dies of it).
    assert 'Segmentation fault' in cell['outputs'][-1]['evalue'] or \
        'SIGSEGV' in cell['outputs'][-1]['evalue']


def test_interrupt_stops_a_pari_computation_in_its_process(api, worksheet):
    """SIGINT reaches PARI's C code: the cell ends with KeyboardInterrupt, in the same
    process, before ``interrupt_timeout`` (3 s) would have restarted it (the restart
    ends a cell with ``Interrupted``; factor(2^1001+1) runs for minutes)."""
    cell = evaluate_later(api, worksheet, 'factor(2^1001+1)')
    wait_status(api, worksheet, cell, ('running',))
    time.sleep(0.5)
    asked = time.monotonic()
    api.post(worksheet + 'interrupt', status=200)
    stopped = wait_status(api, worksheet, cell, ('error', 'done'))
    assert time.monotonic() - asked < 3.0
    assert stopped['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    # The same process can be interrupted again, in Python code and in PARI, and runs on.
    assert interrupt_a_loop(api, worksheet) < 2.0
    cell = evaluate_later(api, worksheet, 'factor(2^1001+1)')
    wait_status(api, worksheet, cell, ('running',))
    time.sleep(0.3)
    api.post(worksheet + 'interrupt', status=200)
    stopped = wait_status(api, worksheet, cell, ('error', 'done'))
    assert stopped['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    assert plain(run(api, worksheet, 'factor(2^64-1)')) == \
        '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'


def test_code_that_ignores_interrupts_gets_restarted(api):
    ws = api.post('/home/alice/', {'name': 'stubborn'}, status=201)['url']
    cell = evaluate_later(
        api, ws, 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n'
                 'while True: pass')
    wait_status(api, ws, cell, ('running',))
    time.sleep(0.3)
    asked = time.monotonic()
    api.post(ws + 'interrupt', status=200)
    stopped = wait_status(api, ws, cell, ('error',), timeout=20)
    assert time.monotonic() - asked < 3 + 2
    assert stopped['outputs'][-1]['ename'] == 'Interrupted'
    assert 'restarted' in stopped['outputs'][-1]['evalue']
    assert plain(run(api, ws, '5+5')) == '10'


def test_an_open_page_keeps_the_process(tmp_path):
    with own_notebook(tmp_path / 'viewer', ['dee'],
                      **{'sagenb.workers.idle_timeout': '3'}) as (nb, [api]):
        ws = api.post('/home/dee/', {'name': 'watched'}, status=201)['url']
        assert plain(run(api, ws, 'kept = 1')) == ''
        for _ in range(6):  # 6 s: twice the idle time, with a viewer all along
            assert api.get(ws + 'alive')['process'] is True
            time.sleep(1)
        # The page goes away: the process stops once idle.
        with nb.transaction() as root:
            key = (root.user_by_login('dee').id, 0)
        deadline = time.monotonic() + 15
        while nb.host.is_running(key) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not nb.host.is_running(key)
        assert run(api, ws, 'kept')['outputs'][-1]['ename'] == 'NameError'


def test_the_kernel_knows_the_modules_it_started_with(api):
    """Worker kernels get IPython's start-up module list from the fork server (not
    rebuilt in each, workers/forkserver.py); ``%reset --aggressive`` relies on it."""
    ws = api.post('/home/alice/', {'name': 'modules'}, status=201)['url']
    known = "k = get_ipython()._sys_modules_keys; ('sage.all' in k, 'IPython' in k, len(k) > 1000)"
    assert plain(run(api, ws, known)) == '(True, True, True)'
    assert plain(run(api, ws, 'import sys; sys.modules is __import__("sys").modules')) == 'True'
