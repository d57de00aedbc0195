"""Worksheets in and out of the notebook: legacy ``.sws``/``.txt``, Jupyter ``.ipynb``.

Every reader turns a file into :class:`WorksheetData` (plain Python, no database), and
every writer turns :class:`WorksheetData` into bytes.  ``sagenb_pyramid.importing`` moves
``WorksheetData`` into and out of the ZODB graph.  Nothing here trusts its input: readers
raise :class:`FormatError` with a message meant for the person who uploaded the file.
"""
from dataclasses import dataclass, field


class FormatError(ValueError):
    """The file cannot be read; the message says why, in words for the uploader."""

    status = 400


class TooLarge(FormatError):
    """The file is readable but holds more than may be stored (a file past
    ``sagenb.data.max_mb``)."""

    status = 413


@dataclass
class Limits:
    """Bounds on what one upload may unpack to (archive bombs stop here)."""
    max_bytes: int = 64 * 2**20           # the uploaded file itself
    max_unpacked_bytes: int = 256 * 2**20  # the sum of all members read from archives
    max_members: int = 5000               # members of one archive
    max_worksheets: int = 500             # worksheets in one .zip
    max_file_bytes: int = 64 * 2**20      # each data file and file kept with a cell


@dataclass
class CellData:
    """One cell: ``type`` is ``compute`` or ``text``; outputs are nbformat 4 outputs.

    ``files`` holds the files a compute cell produced that are not shown inline
    (name -> bytes; names may have a folder part such as ``.jmol_images/a.png``).
    Images are inline in ``outputs`` (base64, as Jupyter keeps them) and carry their
    file name in ``output['metadata']['sagenb']['file']`` so an export writes them back.
    ``format`` of a text cell is ``html`` (sagenb) or ``markdown`` (Jupyter).
    ``attachments`` are a Jupyter markdown cell's (name -> {mime type: bytes}, what its
    text shows as ``attachment:<name>``); ``metadata`` is the cell's notebook metadata
    (tags, slideshow, editable...), kept as it came so an export writes it back.
    """
    type: str
    input: str = ''
    outputs: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    execution_count: int | None = None
    format: str = 'markdown'
    legacy_id: str | None = None  # the cell's id in a legacy worksheet (names cells/<id>/)
    attachments: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


@dataclass
class WorksheetData:
    name: str
    system: str = 'sage'
    typeset: bool = False
    cells: list = field(default_factory=list)
    data_files: dict = field(default_factory=dict)   # name -> bytes
    # (unix time, body text in the sagenb {{{ }}} grammar), oldest first
    revisions: list = field(default_factory=list)
    # Whatever else the source said that a caller may want (legacy conf keys).
    extra: dict = field(default_factory=dict)
    # A notebook's metadata less the keys the worksheet itself holds (title, kernel...),
    # written back as it came (formats/ipynb.py ``OWN_METADATA``).
    metadata: dict = field(default_factory=dict)
    # What an importer changed to make the worksheet acceptable (for the uploader).
    notes: list = field(default_factory=list)

    def compute_cells(self):
        return [c for c in self.cells if c.type == 'compute']
