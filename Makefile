# Building Cerebras-GPT: every command a reader or CI needs. `make help` lists them.
# Each target sets up what it needs first; re-running is fast when nothing changed
# (the virtual environment is re-installed only when a requirements file changes).

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
BOOK_INSTALLED := $(VENV)/.installed-book
TEST_INSTALLED := $(VENV)/.installed-test
PORT ?= 8000
# Every number the chapters print comes from small training runs and samples, and the book checks
# its sentences against them (gptlib.claims). Their last digits depend on which vector kernels
# torch picks for the processor, AVX-512 ones where there are, AVX2 ones elsewhere, in each of the
# three libraries that have their own: ATen (most element-wise and fused kernels), MKL (matrix
# multiplies) and oneDNN (the exact GELU's forward pass). Pinned to the AVX2 kernels, every x86
# processor with AVX2 computes the same bits, so the same sentences hold on each.
# (The benchmarks, which measure speed, run with the processor's best.)
export ATEN_CPU_CAPABILITY := avx2
export MKL_CBWR := AVX2
export ONEDNN_MAX_CPU_ISA := AVX2
UNPINNED := env -u ATEN_CPU_CAPABILITY -u MKL_CBWR -u ONEDNN_MAX_CPU_ISA
# `make test` runs test files on this many processes (pytest-xdist; a file's tests stay together).
# The chapters' kernels use one thread each, so two processes keep two cores busy.
TEST_WORKERS ?= 2
# The table of contents the build reads: book/_toc.yml less any part with no chapter yet.
BOOK_TOC := _build/_toc.yml
CHROMIUM := /usr/lib/chromium/chromium
# The kernels that execute the chapters for the book start with this IPython folder, whose
# start-up file (written from book/_ext/plotly_static.py) shows figures without plotly.js: every
# page that has a figure loads the book's one copy, _static/plotly-*.min.js, so figures stay
# interactive offline and the browser caches the library across chapters. (myst-nb cannot render
# plotly's default mime type.) JupyterLab (`make lab`) keeps plotly's own renderer.
BOOK_IPYTHON := _build/ipython
BOOK_STARTUP := $(BOOK_IPYTHON)/profile_default/startup/00-book-plotly.py
BOOK_ENV := IPYTHONDIR=$(CURDIR)/$(BOOK_IPYTHON) PYTHONHASHSEED=0
# The tests run the chapters as tests/store_outputs.py stores them (nbval compares the HTML of a
# figure in a checked cell): with plotly's `notebook` renderer.
TEST_ENV := PLOTLY_RENDERER=notebook PYTHONHASHSEED=0

.PHONY: help setup data book test lab serve student bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

$(BOOK_INSTALLED): requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# make gptlib and wse_demo importable from anywhere (chapters/, bench/) in this environment
	@$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "building_cerebras_gpt.pth").write_text("$(CURDIR)\n")'
	@touch $@

$(TEST_INSTALLED): $(BOOK_INSTALLED) requirements-test.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

setup: $(BOOK_INSTALLED) data  ## create .venv, install, prepare the offline data

data: $(BOOK_INSTALLED)  ## fetch and hash-check the tokenizer ranks and the corpus; train the book's small model once
	@$(PY) -m gptlib.assets prepare
	@$(PY) -m gptlib.book_models prepare

# A chapter executed (and cached) under another renderer would be reused as it is: when the
# renderer changes, the execution cache goes and every chapter runs again.
$(BOOK_STARTUP): book/_ext/plotly_static.py | $(BOOK_INSTALLED)
	@rm -rf _build/.jupyter_cache
	@$(PY) book/_ext/plotly_static.py write-kernel-startup $(BOOK_IPYTHON) >/dev/null

book: setup $(BOOK_STARTUP)  ## set up, execute every chapter and build the HTML book into _build/html
	@$(PY) book/build_toc.py book/_toc.yml $(BOOK_TOC)
	$(BOOK_ENV) $(VENV)/bin/jupyter-book build . --toc "$(CURDIR)/$(BOOK_TOC)" \
		--config "$(CURDIR)/_config.yml" -W -n --keep-going
	@echo "The book is in _build/html ($$(du -sh _build/html | cut -f1)); 'make serve' shows it."

test: setup $(TEST_INSTALLED)  ## set up, build the book, run every test (library, notebooks, browser)
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(MAKE) --no-print-directory book
	$(TEST_ENV) BOOK_HTML=$(CURDIR)/_build/html BOOK_EXECUTED=$(CURDIR)/_build/jupyter_execute \
		$(PY) -m pytest -c tests/pytest.ini --rootdir . -n $(TEST_WORKERS) --dist loadfile tests chapters

lab: setup  ## open the chapters in JupyterLab
	$(VENV)/bin/jupyter lab chapters/

serve:  ## serve the built book on localhost and print its URL
	@test -f _build/html/index.html || { echo "no built book: run 'make book' first"; exit 1; }
	@echo "The book is at http://localhost:$(PORT)/ (Ctrl-C to stop)"
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

student: setup  ## write the student edition (solutions replaced by stubs) into _build/student
	$(PY) -m gptlib.exercises.student _build/student

bench: setup  ## run every benchmark in bench/ and print its figures
	@for b in bench/bench_*.py; do echo "== $$b"; $(UNPINNED) $(PY) $$b || exit 1; done

clean:  ## remove the built book (keeps .venv and data)
	rm -rf _build
