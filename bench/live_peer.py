"""The peer of bench/live.py: two Yjs clients (pycrdt) in one jupyter-collaboration
room of a notebook, over jupyter_server's websocket; run by the python of a venv with
``jupyter-collaboration`` and ``websocket-client`` (``make bench-live``).

    python bench/live_peer.py PORT TOKEN NOTEBOOK EDITS

The editor replaces the first cell's source ``EDITS`` times, a random 0.2 to 0.4 s
apart, sending each change as a Yjs update; the watcher notes when its document holds
each one.  Prints JSON: ``latencies`` (s, from the update sent) and ``missing``.
"""
import json
import random
import sys
import threading
import time
import urllib.request

import websocket
from pycrdt import (Doc, YMessageType, YSyncMessageType, create_sync_message,
                    create_update_message, handle_sync_message)
from jupyter_ydoc import YNotebook


class Peer:
    def __init__(self, url):
        self.doc = Doc()
        self.notebook = YNotebook(self.doc)
        self.ws = websocket.create_connection(url, timeout=60)
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.seen = {}  # edit number -> when the document first held it
        self.ws.send_binary(create_sync_message(self.doc))
        self.thread = threading.Thread(target=self.receive, daemon=True)
        self.thread.start()
        if not self.synced.wait(60):
            raise RuntimeError('the room did not sync')

    def receive(self):
        while True:
            try:
                message = self.ws.recv()
            except Exception:
                return
            if not message or message[0] != YMessageType.SYNC:
                continue
            with self.lock:
                reply = handle_sync_message(message[1:], self.doc)
            if reply is not None:
                self.ws.send_binary(reply)
            if message[1] == YSyncMessageType.SYNC_STEP2:
                self.synced.set()
            # Noted here, as soon as the update is applied.
            now = time.perf_counter()
            text = self.source() if self.synced.is_set() else ''
            if text.startswith('# edit '):
                self.seen.setdefault(int(text.split()[2]), now)

    def source(self):
        with self.lock:
            return str(self.notebook.ycells[0]['source'])

    def set_source(self, text):
        with self.lock:
            state = self.doc.get_state()
            self.notebook.set_cell(0, source=text)
            update = self.doc.get_update(state)
        self.ws.send_binary(create_update_message(update))


def main():
    port, token, notebook, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    request = urllib.request.Request(
        'http://127.0.0.1:%s/api/collaboration/session/%s' % (port, notebook),
        data=json.dumps({'format': 'json', 'type': 'notebook'}).encode(), method='PUT',
        headers={'Authorization': 'token ' + token, 'Content-Type': 'application/json'})
    session = json.loads(urllib.request.urlopen(request, timeout=60).read())
    url = 'ws://127.0.0.1:%s/api/collaboration/room/json:notebook:%s?sessionId=%s&token=%s' % (
        port, session['fileId'], session['sessionId'], token)
    editor, watcher = Peer(url), Peer(url)
    seen = watcher.seen
    time.sleep(0.5)
    sent = {}
    for k in range(count):
        time.sleep(random.uniform(0.2, 0.4))
        sent[k] = time.perf_counter()
        editor.set_source('# edit %d\n1 + 1' % k)
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({'latencies': [seen[k] - sent[k] for k in seen],
                      'missing': [k for k in range(count) if k not in seen]}))


if __name__ == '__main__':
    main()
