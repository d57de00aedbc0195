"""Real Sage: data files in ``DATA`` and the files a cell writes, shown under it."""
import base64

from ...support.sage import plain, run


# --- data files and files cells write ----------------------------------------------------

def test_data_files_are_in_DATA(api, worksheet):
    api.testapp.post(worksheet + 'data', upload_files=[('file', 'x.csv', b'1,2\n3,4\n')],
                     headers=api.headers, status=201)
    cell = run(api, worksheet, "print(DATA.endswith('/')); print(open(DATA + 'x.csv').read())")
    assert plain(cell) == 'True\n1,2\n3,4\n\n'
    api.testapp.put_json(worksheet + 'data/x.csv', {'content': 'changed'},
                         headers=api.headers)
    assert plain(run(api, worksheet, "print(open(DATA + 'x.csv').read())")) == 'changed\n'
    api.delete(worksheet + 'data/x.csv', status=200)
    assert plain(run(api, worksheet, "import os; os.path.exists(DATA + 'x.csv')")) == 'False'


def test_files_a_cell_writes_show_under_it(api, worksheet):
    cell = run(api, worksheet, "plot(sin(x), (x, 0, 3)).save('wave.png'); "
                               "open('table.txt', 'w').write('a b c')")
    [image] = [o for o in cell['outputs'] if 'image/png' in o.get('data', {})]
    assert image['metadata']['sagenb']['file'] == 'wave.png'
    assert base64.b64decode(image['data']['image/png'])[:4] == b'\x89PNG'
    assert cell['files'] == ['table.txt']
    res = api.testapp.get('%scells/%d/files/table.txt' % (worksheet, cell['id']),
                          headers=api.headers)
    assert res.body == b'a b c'
    # A file left unchanged is not shown again under the next cell.
    assert run(api, worksheet, '1+1')['outputs'][0]['data']['text/plain'] == '2'
    assert 'files' not in run(api, worksheet, "open('table.txt').read()")


def test_the_process_reports_the_files_its_cell_wrote(api, worksheet, monkeypatch):
    """A forked kernel lists the files each cell wrote in its reply: the server does not
    list the process's folder before and after every cell (workers/cellfiles.py)."""
    from sagenb_pyramid.workers import cellfiles
    listed = []
    snapshot = cellfiles.snapshot
    monkeypatch.setattr(cellfiles, 'snapshot', lambda workdir: listed.append(workdir) or
                        snapshot(workdir))
    cell = run(api, worksheet, "open('kept.txt', 'w').write('k'); 6*7")
    assert cell['files'] == ['kept.txt']
    assert cell['outputs'][0]['data']['text/plain'] == '42'
    assert 'files' not in run(api, worksheet, '1+1')
    assert listed == []


def test_a_cell_writing_many_files_keeps_the_first_ones(api, worksheet):
    cell = run(api, worksheet, 'for i in range(60): open("n%02d.txt" % i, "w").write(str(i))\n'
                               '1/0')
    assert cell['outputs'][-1]['ename'] == 'ZeroDivisionError'
    assert len(cell['files']) == 50 and cell['files'][0] == 'n00.txt'
    assert 'the cell wrote 60 files; the first 50 are kept' in plain(cell) or any(
        'the cell wrote 60 files' in o.get('text', '') for o in cell['outputs'])
