"""Writes ``tests/support/presplitdb/`` (``Data.fs`` and ``blobs/``): a small database
as the code stored it while ``resources`` was one module (commit 5d7e34e), with an object
of every stored class of the object graph, for tests/unit/resources/test_stored_classes.py.

Its records name those classes ``sagenb_pyramid.resources.<Class>``.  Kept for the
record: it was run once with that code
(``.venv/bin/python tests/support/presplitdb/make.py tests/support/presplitdb``).
"""
import io
import os
import shutil
import sys
import time

import transaction
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.blob import BlobStorage

from sagenb_pyramid.auth.passwords import hash_password
from sagenb_pyramid.auth.tokens import create_token, token_digest
from sagenb_pyramid.resources import AccountToken, get_root

PASSWORD = 'correct horse battery'
WHEN = 1700000000.0


def main(folder):
    shutil.rmtree(folder + '/blobs', ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith('Data.fs'):
            os.remove(os.path.join(folder, name))
    db = DB(BlobStorage(folder + '/blobs', FileStorage(folder + '/Data.fs')))
    conn = db.open()
    root = get_root(conn.root())
    alice = root.add_user('alice', hash_password(PASSWORD), is_admin=True,
                          email='alice@example.org', fullname='Alice')
    bob = root.add_user('bob', hash_password(PASSWORD))
    group = root.add_group('class')
    bob.group_ids.add(group.id)
    ws = alice.create_worksheet('algebra')
    first = ws.ordered_cells()[0]
    first.input = 'factor(2^64-1)'
    first.output.update('done', [{'output_type': 'execute_result', 'execution_count': 1,
                                  'data': {'text/plain': '3 * 5 * 17 * 257 * 641 * 65537 '
                                           '* 6700417'}, 'metadata': {}}],
                        execution_count=1, started=WHEN, finished=WHEN)
    first.output.add_file('out.txt', b'written by the cell\n')
    first.output.keep_full_text(io.BytesIO(b'the whole text\n'))
    ws.add_cell('text', '# Notes\nSome $x^2$.')
    ws.share(['userid:' + bob.id], ['group:' + group.id])
    ws.tags = ('algebra',)
    ws.data_files().add_file('data.csv', b'a,b\n1,2\n')
    ws.add_revision(WHEN - 60, 'old text', alice.id)
    root.publications.publish(ws, when=WHEN)
    live = alice.create_worksheet('live', system='python')
    publication = root.publications.publish(live, auto=True, when=WHEN + 1)
    publication.rate(bob.id, 4, 'nice')
    create_token(root, alice, 'script')
    root.account_tokens[token_digest('reset-token')] = AccountToken(
        bob.id, 'reset', WHEN + 3600)
    transaction.commit()
    conn.close()
    db.pack(time.time() + 1)
    db.close()
    for name in os.listdir(folder):
        if name.startswith('Data.fs') and name != 'Data.fs':
            os.remove(os.path.join(folder, name))


if __name__ == '__main__':
    main(sys.argv[1])
