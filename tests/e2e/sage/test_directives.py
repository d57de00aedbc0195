"""Real Sage: percent directives, other systems, prompts, the worksheet's default
system and ``%auto`` cells."""
from ...support.sage import plain, run


# --- percent directives and systems -----------------------------------------------------

def test_python_directive_skips_the_preparser(api, worksheet):
    assert plain(run(api, worksheet, '%python\n2^3')) == '1'
    assert plain(run(api, worksheet, '2^3')) == '8'


def test_time_directive_times_the_cell(api, worksheet):
    cell = run(api, worksheet, '%time\nfactor(2^64-1)')
    text = plain(cell)
    assert 'Wall time' in text and '3 * 5 * 17' in text


def test_system_directives(api, worksheet):
    assert plain(run(api, worksheet, '%gp\n2^100')).strip() == str(2**100)
    assert plain(run(api, worksheet, '%sh\necho from the shell')).strip() == 'from the shell'
    html = run(api, worksheet, '%html\n<b>bold</b>')
    assert html['outputs'][0]['data'] == {'text/html': '<b>bold</b>'}


def test_unknown_system_names_those_that_work(api, worksheet):
    cell = run(api, worksheet, '%nosuchsystem\n1')
    assert cell['status'] == 'error'
    assert "'nosuchsystem' is not available" in cell['outputs'][-1]['evalue']
    assert 'python' in cell['outputs'][-1]['evalue'] and 'gp' in cell['outputs'][-1]['evalue']


def test_prompts_are_stripped(api, worksheet):
    assert plain(run(api, worksheet, 'sage: a = 2\nsage: a^10\n1024')) == '1024'


def test_worksheet_default_system(api):
    ws = api.post('/home/alice/', {'name': 'gp worksheet'}, status=201)['url']
    api.patch(ws, {'system': 'gp'}, status=200)
    assert plain(run(api, ws, 'nextprime(10^6)')).strip() == '1000003'
    assert plain(run(api, ws, '%sage\n2^3')) == '8'


def test_auto_cells_run_when_the_process_starts(api):
    ws = api.post('/home/alice/', {'name': 'auto'}, status=201)['url']
    api.post(ws + 'cells', {'input': '%auto\nprepared = 42'}, status=201)
    assert plain(run(api, ws, 'prepared + 1')) == '43'
    api.post(ws + 'restart', status=200)
    assert plain(run(api, ws, 'prepared * 2')) == '84'


def test_more_directives(api, worksheet):
    assert plain(run(api, worksheet, '%maxima\nintegrate(x^2, x)')).strip() == 'x^3/3'
    assert plain(run(api, worksheet, '%singular\nring r = 0, (x,y), dp; (x+y)^2;')).strip() \
        == 'x2+2xy+y2'
    latex = run(api, worksheet, '%latex\nThe area is $\\pi r^2$.')
    assert latex['outputs'][0]['data'] == {'text/latex': 'The area is $\\pi r^2$.'}
    timed = plain(run(api, worksheet, '%timeit\nfactor(2^64-1)'))
    assert 'per loop' in timed
    hidden = run(api, worksheet, '%hide\n%auto\n6*7')
    assert plain(hidden) == '42'
