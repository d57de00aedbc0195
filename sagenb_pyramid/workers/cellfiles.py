"""Files between a worksheet and its Sage process.

Data files (ZODB blobs) are copied into ``<workdir>/data/`` before a cell runs, where
code finds them through ``DATA``; files a cell writes into its working directory are
kept with the cell when it finishes: images shown inline, other files as links.  A
forked Sage process names them in its reply (``collect_reported``); for a spawned one
the server lists the folder before and after the cell (``collect``).
"""
import os
import shutil
import stat

from ..formats.sws import file_output, image_output, is_image

IGNORED = ('kernel.log', 'kernel')
# The key of an execute reply's content that lists the files the cell wrote, in a
# forked kernel's reply (``WorkerKernel`` in sagekernel.py).
FILES_KEY = 'sagenb_files'
MAX_FILES = 50  # files kept with one cell (a loop writing thousands keeps the first ones)


def _own(kernel, path):
    uid = kernel.uid
    if uid is not None:
        os.chown(path, uid, kernel.gid or -1)


def make_data_dir(kernel):
    workdir = kernel.workdir
    if workdir is None:
        return
    path = os.path.join(workdir, 'data')
    os.makedirs(path, mode=0o700, exist_ok=True)
    _own(kernel, path)
    kernel.data_state = {}


def sync_data(kernel, manifest, resolve):
    """Make ``<workdir>/data/`` hold the worksheet's data files (copied when changed).

    ``manifest`` lists ``(name, stamp, blob oid)``; ``resolve`` turns the oids of the
    files that changed into paths of committed blob files (read from ZODB by the
    worker host, wherever it runs).

    The folder belongs to the worker's uid, and its code may have put links in it:
    everything is done relative to a descriptor of the folder opened without following
    links, old names are removed and new files created exclusively, never followed.
    """
    state = getattr(kernel, 'data_state', None)
    if state is None:
        return
    wanted = {name: stamp for name, stamp, _ in manifest}
    changed = [(name, stamp, ref) for name, stamp, ref in manifest
               if state.get(name) != stamp]
    gone = [name for name in state if name not in wanted]
    if not changed and not gone:
        return
    try:
        folder = os.open(os.path.join(kernel.workdir, 'data'),
                         os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return  # the user's code removed or replaced the folder
    try:
        paths = resolve([ref for _, _, ref in changed]) if changed else []
        for (name, stamp, _), source in zip(changed, paths, strict=True):
            state.pop(name, None)
            if source is None:
                continue
            try:
                _replace(folder, name, source, kernel)
                state[name] = stamp
            except OSError:
                pass
        for name in gone:
            del state[name]
            try:
                os.unlink(name, dir_fd=folder)
            except OSError:
                pass
    finally:
        os.close(folder)


def _replace(folder, name, source, kernel):
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                 dir_fd=folder)
    with os.fdopen(fd, 'wb') as target, open(source, 'rb') as data:
        shutil.copyfileobj(data, target)
        uid = kernel.uid
        if uid is not None:
            os.fchown(target.fileno(), uid, kernel.gid or -1)


def _may_keep(name):
    """Whether a file of this name at the top of the folder may be kept with a cell
    (not the kernel's own files, nothing hidden)."""
    return not name.startswith('.') and name not in IGNORED


def snapshot(workdir):
    """``{name: (mtime, size)}`` of the regular files at the top of ``workdir``."""
    found = {}
    try:
        entries = list(os.scandir(workdir))
    except OSError:
        return found
    for entry in entries:
        if not _may_keep(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                found[entry.name] = (info.st_mtime_ns, info.st_size)
        except OSError:
            continue
    return found


def changed_files(before, after):
    """The names of the files new or changed from one ``snapshot`` to the next."""
    return [name for name in sorted(after) if before.get(name) != after[name]]


def collect(workdir, before, writer, max_bytes, uid=None):
    """Add the files the cell wrote (new or changed since ``before``) to its outputs.

    Files are read without following links, and (with worker uids) only files owned by
    the worker's uid: user code cannot make the server read a file of someone else.
    """
    after = snapshot(workdir)
    _collect_changed(workdir, changed_files(before, after), after, writer, max_bytes, uid)


def collect_reported(workdir, names, writer, max_bytes, uid=None):
    """Like ``collect``, for the files the Sage process itself reports its cell wrote
    (a forked kernel does: ``WorkerKernel`` in sagekernel.py), so that the server does
    not list the folder before and after every cell.

    The names are the process's word, so only plain names of regular files at the top
    of the folder are taken, and read as ``collect`` reads them: a name cannot lead the
    server anywhere the listing would not."""
    if not isinstance(names, list):
        return
    found = {}
    for name in names:
        if not isinstance(name, str) or not name or name in found or '/' in name or \
                '\0' in name or not _may_keep(name):
            continue
        try:
            info = os.lstat(os.path.join(workdir, name))
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            found[name] = (info.st_mtime_ns, info.st_size)
    _collect_changed(workdir, sorted(found), found, writer, max_bytes, uid)


def _collect_changed(workdir, changed, after, writer, budget, uid):
    if not changed:
        return
    # The error that ended the cell stays its last output.
    error = writer.outputs.pop() if writer.outputs and \
        writer.outputs[-1].get('output_type') == 'error' else None
    try:
        _collect(workdir, changed, after, writer, budget, uid)
    finally:
        if error is not None:
            writer.outputs.append(error)


def _collect(workdir, changed, after, writer, budget, uid):
    if len(changed) > MAX_FILES:
        writer.add({'output_type': 'stream', 'name': 'stderr',
                    'text': '[the cell wrote %d files; the first %d are kept with it]\n'
                            % (len(changed), MAX_FILES)})
        changed = changed[:MAX_FILES]
    for name in changed:
        size = after[name][1]
        if size > budget:
            writer.add({'output_type': 'stream', 'name': 'stderr',
                        'text': '[%s: %d bytes, too large to keep with the cell]\n'
                                % (name, size)})
            continue
        content = _read_own_file(os.path.join(workdir, name), size, uid)
        if content is None:
            continue
        budget -= len(content)
        if is_image(name):
            writer.add(image_output(name, content))
        else:
            writer.add(file_output(name))
            writer.files[name] = content


def _read_own_file(path, size, uid):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, 'rb') as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
            return None
        return f.read(size)
