# Every target creates or reuses the virtualenv in .venv and installs what it
# needs, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup quickstart test bazel-test clean-runs

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

quickstart: $(STAMP)
	$(PY) -m fastbert_tf.train --flagfile=configs/quickstart.flags

test: $(STAMP)
	$(PY) -m pytest tests -q

clean-runs:
	rm -rf runs
