"""Where the worksheets are: the folders of ``home/``, in both of sagenb's layouts
(``home/__store__/<h[0]>/<h[:2]>/<h[:3]>/<h[:4]>/<user>/<id>/`` and the older
``home/<user>/<id>/``)."""
import os

from .files import NUMBER_RE, is_dir


class Home:
    """The ``home/`` folder of the notebook folder ``folder``; what cannot be listed or
    is no worksheet folder goes into ``report``."""

    def __init__(self, folder, report):
        self.folder = folder
        self.report = report

    def worksheet_folders(self):
        """``{login: {number: folder}}`` from both layouts of ``home/``."""
        home = os.path.join(self.folder, 'home')
        owners = {}
        if not is_dir(home):
            return owners
        store = os.path.join(home, '__store__')
        if is_dir(store):
            for user_dir in self._store_user_dirs(store):
                self._add_user_dir(owners, os.path.basename(user_dir), user_dir)
        for entry in self.listdir(home):
            full = os.path.join(home, entry)
            if entry == '__store__':
                continue
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not target.startswith(os.path.realpath(store) + os.sep):
                    self.report.skip('home/%s' % entry, 'a link out of the notebook\'s '
                                     '__store__ folder; not followed')
                continue  # sagenb's own link to home/__store__/.../<user>
            if is_dir(full):
                self._add_user_dir(owners, entry, full)
        return owners

    def listdir(self, path):
        try:
            return sorted(os.listdir(path))
        except OSError as exc:
            self.report.skip(os.path.relpath(path, self.folder),
                             'cannot be listed (%s)' % (exc.strerror or exc))
            return []

    def _store_user_dirs(self, store):
        dirs = [store]
        for _ in range(4):
            dirs = [os.path.join(d, e) for d in dirs for e in self.listdir(d)
                    if is_dir(os.path.join(d, e))]
        found = []
        for d in dirs:
            for e in self.listdir(d):
                if is_dir(os.path.join(d, e)):
                    found.append(os.path.join(d, e))
        return found

    def _add_user_dir(self, owners, login, user_dir):
        worksheets = owners.setdefault(login, {})
        for entry in self.listdir(user_dir):
            full = os.path.join(user_dir, entry)
            if not is_dir(full):
                continue  # history.pickle and the like
            if not NUMBER_RE.match(entry):
                self.report.skip('%s/%s' % (login, entry), 'not a worksheet folder (its '
                                 'name is not a number)')
                continue
            number = int(entry)
            if number in worksheets:
                self.report.skip('%s/%s' % (login, entry), 'found twice (home/%s and '
                                 'home/__store__); the one in __store__ is migrated' % login)
                continue
            worksheets[number] = full
