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

# The suite under Bazel (WORKSPACE, BUILD.bazel files, tools/bazel/), offline:
# installs Debian's Bazel if missing, writes .bazelrc.offline (local stand-ins
# for the repositories Bazel would download, from ../shared/bazel-offline or
# $BAZEL_OFFLINE_DIR; the venv's interpreter) and runs every py_test.
# Bazel's output base stays outside the repository (~/.cache/bazel, or
# $BAZEL_OUTPUT_USER_ROOT). Narrow it with e.g.
#   make bazel-test BAZEL_TARGETS=//tests:test_flops
#   make bazel-test BAZEL_TEST_FLAGS=--test_tag_filters=-heavy
BAZEL ?= bazel
BAZEL_TARGETS ?= //...
BAZEL_TEST_FLAGS ?=
BAZEL_RC := $(CURDIR)/.bazelrc.offline
BAZEL_STARTUP := --bazelrc=$(BAZEL_RC) \
	$(if $(BAZEL_OUTPUT_USER_ROOT),--output_user_root=$(BAZEL_OUTPUT_USER_ROOT))

bazel-test: $(STAMP)
	bash tools/bazel/ensure_bazel.sh $(BAZEL)
	bash tools/bazel/offline_bazelrc.sh -o $(BAZEL_RC) --python $(abspath $(PY))
	$(BAZEL) $(BAZEL_STARTUP) test $(BAZEL_TARGETS) --test_output=errors \
		$(BAZEL_TEST_FLAGS)
