# Every target creates or reuses the virtualenv in .venv and installs what it
# needs, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup quickstart quickstart-pretrained test test-quick test-beam bazel-test clean-runs

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

quickstart: $(STAMP)
	$(PY) -m fastbert_tf.train --flagfile=configs/quickstart.flags --overwrite

# The same corpus on the pretrained 12-layer multilingual-e5-small.
quickstart-pretrained: $(STAMP)
	$(PY) -m fastbert_tf.train --flagfile=configs/quickstart_e5.flags --overwrite

test: $(STAMP)
	$(PY) -m pytest tests -q

# The quick tier: every test but those marked `large` (they train, export
# or serve models; Bazel tags the same files heavy).
test-quick: $(STAMP)
	$(PY) -m pytest tests -q -m "not large"

clean-runs:
	rm -rf runs

# The Apache Beam extra (pip install .[beam]) in its own virtualenv: Beam 2.77
# needs protobuf < 7 and pyarrow < 26, the main pins are newer
# (requirements-beam.txt says which versions replace them and why).
BEAM_VENV ?= .venv-beam
BEAM_PY := $(BEAM_VENV)/bin/python
BEAM_STAMP := $(BEAM_VENV)/.installed-stamp
BEAM_TESTS := tests/test_beam_inference.py tests/test_predictor.py \
	tests/test_early_exit.py

$(BEAM_STAMP): requirements.txt requirements-beam.txt setup.py
	$(PYTHON) -m venv $(BEAM_VENV)
	$(BEAM_PY) -m pip install -q --upgrade pip
	grep -v -E '^(protobuf|pyarrow)==' requirements.txt > $(BEAM_VENV)/requirements-base.txt
	$(BEAM_PY) -m pip install -q -r $(BEAM_VENV)/requirements-base.txt -r requirements-beam.txt
	$(BEAM_PY) -m pip install -q --no-deps -e .
	touch $(BEAM_STAMP)

test-beam: $(BEAM_STAMP)
	$(BEAM_PY) -m pytest $(BEAM_TESTS) -q

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
