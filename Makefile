# make run: install into .venv, then serve the notebook on http://127.0.0.1:6543/
# make test: install, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench bench-class bench-collab bench-live bench-storage frontend doc clean help

help:  ## list the targets
	@grep -E '^[a-z][a-z-]*:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install: $(STAMP)  ## create .venv and install the project with its test dependencies

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[testing]'
	touch $(STAMP)

run: install  ## serve the notebook (embedded ZODB and Sage workers on this machine)
	$(VENV)/bin/pserve development.ini $(ARGS)

# Two pytest processes (pytest-xdist): most tests wait on Sage, servers or a browser, so two
# share a 2-core machine well; a file's tests stay in one process (its module fixtures).
# TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= 2

test: install  ## run the whole suite (needs /usr/bin/chromium for the browser test)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile tests $(ARGS)

lint: install  ## ruff: pyflakes, bugbear
	$(VENV)/bin/ruff check --select F,E9,B --line-length 100 sagenb_pyramid tests bench

frontend:  ## rebuild the committed editor and MathJax bundles (needs node and npm)
	cd frontend && npm ci && npm run build

# Sage's manuals for /doc/ (docs/doc.md): Debian's prebuilt HTML (75 MB download, 444 MB
# installed); PyPI's passagemath-doc-html is a source distribution that builds them for hours.
doc:  ## install Sage's HTML manuals for /doc/ (Debian's sagemath-doc; needs root)
	@if command -v apt-get >/dev/null; then apt-get install -y sagemath-doc; \
	else echo 'No apt-get here: put a folder of Sage'"'"'s HTML documentation somewhere and set sagenb.doc.path (SAGENB_DOC_PATH) to it (docs/doc.md).'; exit 1; fi

clean:  ## remove the virtual environment (data in var/ is kept)
	rm -rf $(VENV) *.egg-info

bench: install  ## run the worker benchmarks against jupyter_server (installs it into .venv)
	$(PY) -m pip install --quiet jupyter_server websocket-client psutil
	$(PY) bench/workers.py $(ARGS)

bench-class: install  ## a class of 200 on one server for 5 minutes, and a smaller one on jupyter_server
	$(PY) -m pip install --quiet jupyter_server websocket-client psutil
	$(PY) bench/classroom.py $(ARGS)

bench-live: install  ## latency of live changes between two clients (issue 21), and jupyter-collaboration's in .venv-peer
	test -x .venv-peer/bin/python || $(PYTHON) -m venv .venv-peer
	.venv-peer/bin/python -m pip install --quiet jupyter-collaboration websocket-client
	$(PY) bench/live.py $(ARGS)

bench-storage: install  ## FileStorage, ZEO and PostgreSQL (two app servers) side by side (needs PostgreSQL's binaries)
	$(PY) bench/storage.py $(ARGS)

# COLLAB_ARGS go to bench/collab.py (--quick: a tenth of the data), SEARCH_ARGS to
# bench/search.py (--n 1000 for a quick run).
bench-collab: install  ## sharing, /pub/ and search at scale (issue 20) against jupyter_server's contents API
	$(PY) -m pip install --quiet jupyter_server websocket-client psutil
	$(PY) bench/collab.py $(COLLAB_ARGS)
	$(PY) bench/search.py $(SEARCH_ARGS)
