"""What a migration tells its caller: the :class:`Report` of what it did and left out,
and :class:`MigrationError` when it cannot start."""
from .. import names


class MigrationError(ValueError):
    """The migration cannot start (not a notebook folder); nothing was done."""


class Report:
    """What a migration did (or, in a dry run, would do)."""

    def __init__(self, dry_run=False):
        self.dry_run = dry_run
        self.users = 0
        self.worksheets = 0
        self.cells = 0       # cells read from the legacy bodies (text and compute)
        self.files = 0       # cell files and data files
        self.revisions = 0   # snapshots kept as revisions
        self.imported = []   # ('owner/id' in sagenb, 'login/number' here)
        self.settings = []   # one line per legacy server setting
        self.notes = []      # (item, message): done, but worth knowing
        self.skipped = []    # (item, reason): left out

    def skip(self, item, reason):
        self.skipped.append((item, reason))

    def note(self, item, message):
        self.notes.append((item, message))

    def skipped_items(self):
        return [item for item, _ in self.skipped]

    def lines(self):
        """The report as lines of text; names from the folder cannot break a line or
        turn its text around (control and bidirectional characters are escaped)."""
        return [names.escape_hidden(line) for line in self._lines()]

    def _lines(self):
        out = []
        verb = 'Would import' if self.dry_run else 'Imported'
        if self.dry_run:
            out.append('Dry run: nothing was written.')
        out.append('%s %d users, %d worksheets (%d cells), %d files, %d revisions.'
                   % (verb, self.users, self.worksheets, self.cells, self.files,
                      self.revisions))
        for old, new in self.imported:
            out.append('  worksheet %s -> %s' % (old, new))
        if self.settings:
            out.append('Settings of the old server (kept in the database as '
                       'legacy_settings; copy into the .ini what you want applied):')
            out.extend('  ' + line for line in self.settings)
        if self.notes:
            out.append('Notes:')
            out.extend('  %s: %s' % note for note in self.notes)
        if self.skipped:
            out.append('Skipped (%d):' % len(self.skipped))
            out.extend('  %s: %s' % skip for skip in self.skipped)
        return out
