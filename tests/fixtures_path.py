"""Where the shared test fixtures live (real worksheets and notebooks, read-only).

``$SAGENB_FIXTURES`` when set, else ``<repository>/../shared/fixtures``.  Tests that
need the folder should fail, not skip, when it is missing.
"""
import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def fixtures_dir():
    configured = os.environ.get('SAGENB_FIXTURES')
    if configured:
        return Path(configured).expanduser()
    return REPOSITORY.parent / 'shared' / 'fixtures'
