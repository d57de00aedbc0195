"""Moving a notebook from its embedded FileStorage to PostgreSQL with RelStorage's
``zodbconvert``, as the README's "Large sites: PostgreSQL" says: blobs included."""
import os
import subprocess
import sys
import uuid

import pytest
import webtest

from ..support.notebook import Api, Notebook
from ..support.postgres import PASSWORD, USER, app_server

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

CONF = """\
%import relstorage
<filestorage source>
  path {data}/Data.fs
  blob-dir {data}/blobs
</filestorage>
<relstorage destination>
  blob-dir {cache}
  shared-blob-dir false
  <postgresql>
    dsn host=127.0.0.1 port={port} dbname={db} user={user} password={password}
  </postgresql>
</relstorage>
"""


def test_a_filestorage_with_blobs_converted_into_postgresql(tmp_path, postgres):
    data_dir = tmp_path / 'data'
    nb = Notebook(data_dir)
    try:
        nb.add_user('alice')
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        api = Api(app, nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'moving'}, status=201)['url'].replace(
            'http://localhost', '')
        api.post(ws + 'cells/', {'input': 'moved = True'}, status=201)
        app.post(ws + 'data', upload_files=[('file', 'table.csv', b'a,b\n1,2\n')],
                 headers=api.headers, status=201)
    finally:
        nb.close()
    db = postgres.create_database('c' + uuid.uuid4().hex[:12])
    conf = tmp_path / 'convert.conf'
    conf.write_text(CONF.format(data=data_dir, cache=tmp_path / 'convert-cache',
                                port=postgres.port, db=db, user=USER, password=PASSWORD))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'zodbconvert'),
                           str(conf)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    moved = app_server(postgres, db, tmp_path, 'app1')
    try:
        app = webtest.TestApp(moved.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        api = Api(app, moved.token('alice'))
        assert [w['name'] for w in api.get('/home/alice/')['worksheets']] == ['moving']
        assert 'moved = True' in [c['input'] for c in api.get(ws)['cells']]
        # The blob came along: served from PostgreSQL through an empty blob cache.
        assert app.get(ws + 'data/table.csv', headers=api.headers).body == b'a,b\n1,2\n'
    finally:
        moved.close()
