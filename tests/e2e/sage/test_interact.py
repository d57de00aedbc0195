"""Real Sage: ``@interact`` controls, their changes and layout, through the JSON API."""
import time

from ...support.sage import run


# --- @interact ------------------------------------------------------------------------

def models_named(cell, name):
    return {mid: m for mid, m in cell['widgets'].items() if m['model_name'] == name}


def output_text(cell):
    [out] = models_named(cell, 'OutputModel').values()
    return ''.join(o.get('text', '') for o in out['state']['outputs'])


def wait_version(api, ws, cell_id, version, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cell = api.get('%scells/%d' % (ws, cell_id), since=version, wait=5)
        if cell['version'] > version:
            return cell
    raise AssertionError('cell %d did not change' % cell_id)


def wait_output(api, ws, cell_id, version, text, timeout=30):
    """The cell once its interact's Output shows ``text`` (after ``version``)."""
    deadline = time.monotonic() + timeout
    cell = wait_version(api, ws, cell_id, version)
    while output_text(cell) != text:
        assert time.monotonic() < deadline, output_text(cell)
        cell = wait_version(api, ws, cell_id, cell['version'])
    return cell


def test_interact_controls_and_their_output(api, worksheet):
    cell = run(api, worksheet, '@interact\ndef f(n=(1..10), b=True):\n    print(n*n, b)')
    assert cell['status'] == 'done'
    view = [o for o in cell['outputs']
            if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    assert view, cell['outputs']
    box = view[0]['data']['application/vnd.jupyter.widget-view+json']['model_id']
    assert cell['widgets'][box]['model_name'] == 'VBoxModel'
    assert output_text(cell) == '1 True\n'
    [slider] = models_named(cell, 'SelectionSliderModel')
    # Nothing of the interact's own printing lands in the cell's outputs.
    assert not [o for o in cell['outputs'] if o['output_type'] == 'stream']
    res = api.post('%scells/%d/comm' % (worksheet, cell['id']),
                   {'comm_id': slider, 'data': {'method': 'update', 'state': {'index': 6}}},
                   status=202)
    changed = wait_output(api, worksheet, cell['id'], res['version'], '49 True\n')
    assert changed['widgets'][slider]['state']['index'] == 6
    assert changed['status'] == 'done' and changed['outputs'] == cell['outputs']


def test_interact_changes_are_checked(api, worksheet):
    cell = run(api, worksheet, '@interact\ndef g(k=(1..3)):\n    print(k)')
    [slider] = models_named(cell, 'SelectionSliderModel')
    url = '%scells/%d/comm' % (worksheet, cell['id'])
    assert 'comm_id' in api.post(url, {'comm_id': 'nope', 'data': {}}, status=400)['error']
    assert '"data"' in api.post(url, {'comm_id': slider, 'data': {'method': 'x'}},
                                status=400)['error']
    api.post(worksheet + 'restart', status=200)
    res = api.post(url, {'comm_id': slider, 'data': {'method': 'update',
                                                     'state': {'index': 1}}}, status=409)
    assert 'not live' in res['error']
    # The last output is still shown after the process is gone.
    assert output_text(api.get('%scells/%d' % (worksheet, cell['id']))) == '1\n'


def test_interact_layout_places_controls(api, worksheet):
    cell = run(api, worksheet, (
        "@interact(layout=dict(top=[['f', 'color']], left=[['axes'], ['fill']],\n"
        "                      bottom=[['zoom']]))\n"
        "def _(f=input_box(x^2, width=20), color=color_selector(widget='colorpicker'),\n"
        "      axes=True, fill=True, zoom=range_slider(-3, 3, default=(-3, 3))):\n"
        "    print(zoom)"))
    assert cell['status'] == 'done', cell['outputs']
    widgets = cell['widgets']

    def kind(ref):
        return widgets[ref[len('IPY_MODEL_'):]]['model_name']

    def children(model_id):
        return widgets[model_id]['state']['children']

    [view] = [o for o in cell['outputs']
              if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    box = view['data']['application/vnd.jupyter.widget-view+json']['model_id']
    rows = [kind(c) for c in children(box)]
    # top row (f, color), the middle (left column | output), bottom row (zoom)
    assert rows == ['HBoxModel', 'HBoxModel', 'HBoxModel'], rows
    top, middle, bottom = (c[len('IPY_MODEL_'):] for c in children(box))
    assert [kind(c) for c in children(top)] == ['TextModel', 'ColorPickerModel']
    assert [kind(c) for c in children(middle)] == ['VBoxModel', 'OutputModel']
    assert [kind(c) for c in children(bottom)] == ['IntRangeSliderModel']
    assert output_text(cell) == '(-3, 3)\n'


def test_interact_input_grid(api, worksheet):
    cell = run(api, worksheet, '@interact\ndef _(m=input_grid(2, 2, default=[[1, 2], [3, 4]],'
                               ' to_value=matrix)):\n    print(m.det())')
    assert output_text(cell) == '-2\n'
    texts = {k: m for k, m in cell['widgets'].items() if m['model_name'] == 'TextModel'}
    assert sorted(m['state']['value'] for m in texts.values()) == ['1', '2', '3', '4']
    [four] = [k for k, m in texts.items() if m['state']['value'] == '4']
    res = api.post('%scells/%d/comm' % (worksheet, cell['id']),
                   {'comm_id': four, 'data': {'method': 'update', 'state': {'value': '10'}}},
                   status=202)
    wait_output(api, worksheet, cell['id'], res['version'], '4\n')
