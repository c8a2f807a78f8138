# Two entry points for a fresh clone: `make book` and `make test`. Both create .venv when it is
# missing, install the pinned packages (offline: torch and torchvision come from the local wheels),
# and are safe to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.reprolib-installed

# Real data for tests and the book: ../shared/data when it exists, unless the caller set it.
ifeq ($(origin REPROLIB_DATA), undefined)
  ifneq ($(wildcard ../shared/data),)
    REPROLIB_DATA := $(abspath ../shared/data)
  endif
endif
export REPROLIB_DATA
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

.PHONY: install test book clean-book help

help:
	@echo "make book   - execute every notebook with papermill and build the Jupyter Book into _build/html"
	@echo "make test   - run the whole test suite (includes executing the notebooks at scale=ci)"

# A fresh install needs about 7 GB (torch's CUDA build alone is 5.5 GB). Check before pip starts, so that a full
# disk stops with the numbers instead of pip's "[Errno 28] No space left on device" half-way through the install.
INSTALL_NEEDS_GB ?= 7
# the pins live in constraints.txt (environment.yml repeats them for conda); read them there, not twice here
TORCH_VERSION := $(shell sed -n 's/^torch==//p' constraints.txt)
TORCHVISION_VERSION := $(shell sed -n 's/^torchvision==//p' constraints.txt)

$(STAMP): pyproject.toml constraints.txt
	@bash .ci/check-free-space "$(VENV)" "$(PY)" "$(INSTALL_NEEDS_GB)" "$(TORCH_VERSION)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,book]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

book: $(STAMP)
	$(PY) -m reprolib.book build $(BOOK_ARGS)
	@echo "Book written to _build/html/index.html"

clean-book:
	rm -rf _build
