"""Reading tar and zip archives from strangers, into memory, within limits.

Nothing is extracted to disk.  A member with an absolute path, a ``..`` part, a link or a
device is refused (the whole archive is: an archive that tries it is not a worksheet
someone exported).  The number of members and the bytes unpacked are bounded, so
compression bombs stop early, and the error names the reason.
"""
import bz2
import io
import stat
import tarfile
import zipfile
import zlib

from . import FormatError


class Budget:
    """Bytes that may still be unpacked from one upload (shared by nested archives)."""

    def __init__(self, limits):
        self.limits = limits
        self.left = limits.max_unpacked_bytes

    def take(self, size, name):
        if size > self.left:
            raise FormatError('unpacking %s would exceed the limit of %d MB for one upload'
                              % (name, self.limits.max_unpacked_bytes // 2**20))
        self.left -= size


def check_member_name(name):
    """The member's path with ``/`` separators, or FormatError if it is unsafe."""
    if '\x00' in name:
        raise FormatError('the archive has a member with a NUL byte in its name')
    path = name.replace('\\', '/')
    if path.startswith('/') or (len(path) > 1 and path[1] == ':'):
        raise FormatError('the archive has a member with an absolute path: %s' % name)
    parts = [p for p in path.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise FormatError('the archive has a member whose path leaves the archive: %s'
                          % name)
    return '/'.join(parts)


def read_tar(data, limits, budget=None):
    """``{path: bytes}`` of the regular files of a (compressed) tar archive."""
    budget = budget or Budget(limits)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode='r:*')
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise FormatError('not a tar archive (%s)' % _reason(exc)) from None
    files = {}
    count = 0
    try:
        with tar:
            while True:
                try:
                    member = tar.next()
                except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                    raise FormatError('the archive is damaged (%s)' % _reason(exc)) from None
                if member is None:
                    break
                count += 1
                if count > limits.max_members:
                    raise FormatError('the archive has more than %d members'
                                      % limits.max_members)
                path = check_member_name(member.name)
                if member.issym() or member.islnk():
                    raise FormatError('the archive has a link, which is not accepted: %s'
                                      % member.name)
                if member.isdev():
                    raise FormatError('the archive has a device or pipe, which is not '
                                      'accepted: %s' % member.name)
                if member.isdir() or not path:
                    continue
                if not member.isreg():
                    raise FormatError('the archive has a member of an unknown kind: %s'
                                      % member.name)
                budget.take(member.size, member.name)
                try:
                    files[path] = tar.extractfile(member).read()
                except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                    raise FormatError('the archive is damaged at %s (%s)'
                                      % (member.name, _reason(exc))) from None
    except EOFError:
        raise FormatError('the archive ends too early') from None
    return files


def read_zip(data, limits, budget=None):
    """``{path: bytes}`` of the files of a zip archive (``__MACOSX/`` left out)."""
    budget = budget or Budget(limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError('not a zip archive (%s)' % _reason(exc)) from None
    files = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise FormatError('the archive has more than %d members' % limits.max_members)
        for info in infos:
            path = check_member_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise FormatError('the archive has a link, which is not accepted: %s'
                                  % info.filename)
            kind = stat.S_IFMT(mode)  # 0 when the writer recorded no file type
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise FormatError('the archive has a device or pipe, which is not '
                                  'accepted: %s' % info.filename)
            if not path or info.is_dir():  # is_dir() fails on an empty name
                continue
            if path.startswith('__MACOSX/') or path.rsplit('/', 1)[-1] == '.DS_Store':
                continue
            if info.flag_bits & 0x1:
                raise FormatError('the archive is encrypted: %s' % info.filename)
            budget.take(info.file_size, info.filename)
            try:
                with archive.open(info) as member:
                    content = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError,
                    zlib.error) as exc:
                raise FormatError('the archive is damaged at %s (%s)'
                                  % (info.filename, _reason(exc))) from None
            if len(content) > info.file_size:
                raise FormatError('the archive lies about the size of %s' % info.filename)
            files[path] = content
    return files


def bunzip(data, budget, name):
    """bzip2-decompress within the budget."""
    decompressor = bz2.BZ2Decompressor()
    try:
        out = decompressor.decompress(data, max_length=budget.left + 1)
    except (OSError, EOFError, ValueError) as exc:
        raise FormatError('%s is not readable bzip2 data (%s)' % (name, _reason(exc))) \
            from None
    budget.take(len(out), name)
    return out


def _reason(exc):
    return str(exc) or type(exc).__name__
