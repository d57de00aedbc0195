"""services/transfer.py called directly, as a script would: importing an upload within
the limits and the quota (a refused one makes nothing), exporting a worksheet, choosing
a home's worksheets for a zip and the zip itself."""
import io
import json
import zipfile

import pytest
from pyramid.httpexceptions import HTTPException

from sagenb_pyramid.formats import FormatError, TooLarge
from sagenb_pyramid.services import transfer

TEXT = 'Sums\nsystem:gp\n\n{{{id=3|\n2+2\n///\n4\n}}}\n'


def settings_of(notebook, **changes):
    return dict(notebook.registry.settings, **changes)


def zip_with(**members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        for name, content in members.items():
            z.writestr(name.replace('_', '.'), content)
    return buffer.getvalue()


def refused(status, call, *args):
    with pytest.raises(HTTPException) as caught:
        call(*args)
    assert caught.value.code == status, caught.value.user_message
    return caught.value.user_message


def test_import_upload_makes_the_worksheets(notebook):
    notebook.add_user('alice')
    settings = settings_of(notebook)
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        [made], notes, skipped = transfer.import_upload(
            settings, alice, 'w.txt', io.BytesIO(TEXT.encode()))
        assert made.owner is alice and made.name == 'Sums' and made.system == 'gp'
        assert made.source == 'upload:w.txt' and notes == [] and skipped == []
        assert [c.input for c in made.ordered_cells()] == ['2+2']
        # The name given is for a file of one worksheet only.
        [named], _, _ = transfer.import_upload(
            settings, alice, 'w.txt', io.BytesIO(TEXT.encode()), 'Mine')
        assert named.name == 'Mine'
        several, _, skipped = transfer.import_upload(
            settings, alice, 'two.zip',
            io.BytesIO(zip_with(a_txt=TEXT, b_txt='B\n{{{id=0|\n1\n///\n}}}\n',
                                notes_md='no')), 'Ignored')
        assert sorted(w.name for w in several) == ['B', 'Sums']
        assert [s['file'] for s in skipped] == ['notes.md']
        assert len(alice.worksheets()) == 4


def test_a_refused_import_makes_nothing(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        with pytest.raises(FormatError) as caught:
            transfer.import_upload(settings_of(notebook), alice, 'mixed.zip', io.BytesIO(
                zip_with(good_txt=TEXT, bad_sws=b'this is not bzip2')))
        assert 'bad.sws' in str(caught.value) and caught.value.status == 400
        # Past the owner's quota (a tenth of a kilobyte here): refused whole.
        tiny = settings_of(notebook, **{'sagenb.quota.user_mb': 0.0001})
        big = TEXT + '{{{id=4|\n%s\n///\n}}}\n' % ('x' * 500)
        with pytest.raises(TooLarge) as caught:
            transfer.import_upload(tiny, alice, 'big.txt', io.BytesIO(big.encode()))
        assert 'quota' in str(caught.value) and caught.value.status == 413
        assert alice.worksheets() == []


def test_export_and_download_names(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        worksheet = alice.create_worksheet('a/b: "c"?')
        worksheet.add_cell('compute', '1+1')
        content, kind, name = transfer.export(worksheet, 'ipynb')
        assert kind == 'application/x-ipynb+json' and name == 'a_b_ _c_.ipynb'
        cells = json.loads(content)['cells']
        assert [c['source'] for c in cells if c['cell_type'] == 'code'][-1] in (
            '1+1', ['1+1'])
        content, kind, name = transfer.export(worksheet, 'sws')
        assert kind == 'application/x-bzip2' and content.startswith(b'BZh')
        [again], _, _ = transfer.import_upload(settings_of(notebook), alice, name,
                                               io.BytesIO(content))
        assert [c.input for c in again.ordered_cells()] == \
            [c.input for c in worksheet.ordered_cells()]
    assert transfer.download_name(' .. ', '.sws') == 'worksheet.sws'
    assert transfer.download_name('x' * 300, '.sws') == 'x' * 120 + '.sws'


def test_selection_and_zip(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        one, two, three = (alice.create_worksheet(n) for n in ('one', 'two', 'three'))
        two.set_state(alice.id, 'trash')
        assert transfer.selection(alice, alice, [three.number, one.number]) == [three, one]
        assert transfer.selection(alice, alice, None, 'trash') == [two]
        assert sorted(w.name for w in transfer.selection(alice, alice)) == \
            ['one', 'three', 'two']
        # The state is the viewer's: bob (an admin, say) has trashed nothing of alice's.
        assert len(transfer.selection(alice, bob, None, 'active')) == 3
        refused(404, transfer.selection, alice, alice, [one.number, 999])
        refused(404, transfer.selection, alice, alice, [])
        refused(404, transfer.selection, alice, alice, None, 'archive')
        refused(400, transfer.selection, alice, alice, None, 'shared')
        content, name = transfer.zip_export(alice, [three, one], 'ipynb')
        assert name.startswith('alice-worksheets-') and name.endswith('.zip')
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            assert z.namelist() == ['one.ipynb', 'three.ipynb']  # by number
