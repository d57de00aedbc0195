"""Writes ``tests/support/olddb/`` (``Data.fs`` and ``blobs/``): a small database as the code
before schema evolution stored it (commit 1d50939, issue 19), for tests/unit/test_evolve.py.

Kept for the record: it was run once with that code
(``.venv/bin/python tests/support/olddb/make.py tests/support/olddb``); the code of today writes new
databases fully evolved, so running it again would not give the old layout.
"""
import os
import shutil
import sys
import time

import transaction
from BTrees.IOBTree import IOBTree
from BTrees.Length import Length
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.blob import BlobStorage

from sagenb_pyramid import audit, server_settings
from sagenb_pyramid.auth.passwords import hash_password
from sagenb_pyramid.auth.tokens import create_token
from sagenb_pyramid.resources import AccountToken, WorkerHost, get_root
from sagenb_pyramid.security import live_sessions, token_digest

PASSWORD = 'correct horse battery'


def main(folder):
    shutil.rmtree(folder + '/blobs', ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith('Data.fs'):
            os.remove(os.path.join(folder, name))
    storage = BlobStorage(folder + '/blobs', FileStorage(folder + '/Data.fs'))
    db = DB(storage)
    conn = db.open()
    root = get_root(conn.root())
    alice = root.add_user('alice', hash_password(PASSWORD), is_admin=True,
                          email='alice@example.org', fullname='Alice')
    bob = root.add_user('bob', hash_password(PASSWORD))
    # A user without worksheets has no storage total yet.
    root.add_user('carol', hash_password(PASSWORD))
    group = root.add_group('class')
    bob.group_ids.add(group.id)
    ws = alice.create_worksheet('algebra')
    first = ws.ordered_cells()[0]
    first.input = 'factor(2^64-1)'
    first.output.update('done', [{'output_type': 'execute_result', 'execution_count': 1,
                                  'data': {'text/plain': '3 * 5 * 17 * 257 * 641 * 65537 '
                                           '* 6700417'}, 'metadata': {}}],
                        execution_count=1, started=time.time(), finished=time.time())
    first.output.add_file('out.txt', b'written by the cell\n')
    text = ws.add_cell('text', '# Notes\nSome $x^2$.')
    text.format = 'markdown'
    ws.collaborators.append('userid:' + bob.id)
    ws.viewers.append('group:' + group.id)
    ws.data_files().add_file('data.csv', b'a,b\n1,2\n')
    ws.add_revision(time.time() - 60, 'old text', alice.id)
    alice.create_worksheet('empty', system='python')
    create_token(root, alice, 'script')
    create_token(root, bob, 'reader', scope='read', expires=time.time() + 10 * 86400)
    root.tree('account_tokens')[token_digest('reset-token')] = AccountToken(
        bob.id, 'reset', time.time() + 3600)
    root.link_identity(bob, 'github:4242', {'provider': 'GitHub', 'username': 'bob'})
    live_sessions(alice, create=True)['a-session-id'] = time.time()
    # The numbered audit log of the first versions, then entries of today's log.
    root.audit = IOBTree()
    root.audit_count = Length()
    for number, action in enumerate(('login', 'user_suspended'), 1):
        root.audit[number] = audit.AuditEntry(action, 'alice', 'bob', 'old', '127.0.0.1')
        root.audit_count.change(1)
    log = audit.audit_log(root)
    log[audit.new_key(log)] = audit.AuditEntry('login', 'bob', 'bob', '', '127.0.0.1')
    server_settings.set_value(root, 'sagenb.allow_signup', 'false')
    host = root.tree('worker_hosts')['host1'] = WorkerHost(
        'host1', 'boot1', address='127.0.0.1:9', max_total=8)
    host.running = ('%s/0' % alice.id,)
    root.tree('placements')['%s/0' % alice.id] = host.tag
    transaction.commit()
    conn.close()
    db.pack()
    db.close()
    for name in os.listdir(folder):
        if name.startswith('Data.fs') and name != 'Data.fs':
            os.remove(os.path.join(folder, name))


if __name__ == '__main__':
    main(sys.argv[1])
