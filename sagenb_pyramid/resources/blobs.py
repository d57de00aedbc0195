"""ZODB blobs made from bytes, copied and read; the content type of a file name."""
import mimetypes
import shutil

from ZODB.blob import Blob


def guess_type(name):
    return mimetypes.guess_type(name or '')[0] or 'application/octet-stream'


def bytes_blob(content):
    blob = Blob()
    with blob.open('w') as f:
        f.write(content)
    return blob


def copy_blob(blob):
    twin = Blob()
    with blob.open('r') as source, twin.open('w') as target:
        shutil.copyfileobj(source, target)
    return twin


def read_blob(blob):
    with blob.open('r') as f:
        return f.read()
