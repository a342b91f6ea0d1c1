"""Versions like TF Serving: polling, background loads, broken and
half-copied versions, latest-N unloading, labels.

The policy is tested on VersionManager with a stand-in loader (exact and
fast); the end-to-end tests copy real exported versions into a base path a
running LocalServer polls, as a deployment does.
"""

import logging
import os
import shutil
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.serving import client as client_lib
from fastbert_tf.serving import server as server_lib
from fastbert_tf.serving import versions as versions_lib

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

MODEL = "fastbert"
TEXTS = ["a b z", "c", "好 书"]
DEADLINE = 30.0
WAIT = 180.0  # seconds a background load may take on two busy cores


class _Fake:
  """A loaded version for the policy tests."""

  def __init__(self, version):
    self.version = version
    self.closed = False

  def close(self):
    self.closed = True


def _fake_load(version, path):
  if os.path.exists(os.path.join(path, "BROKEN")):
    raise ValueError(f"version {version} is broken")
  if not os.path.isdir(os.path.join(path, "variables")):
    raise OSError(f"{path}/variables/variables.index not found")
  return _Fake(version)


def _fake_version(base, version, broken=False, variables=True):
  path = os.path.join(base, str(version))
  os.makedirs(path, exist_ok=True)
  open(os.path.join(path, "saved_model.pb"), "w").close()
  if variables:
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
  if broken:
    open(os.path.join(path, "BROKEN"), "w").close()
  return path


def _spec(version=None, label=None, name=MODEL):
  spec = client_lib._PB.model_pb2.ModelSpec(name=name)  # pylint: disable=protected-access
  if version is not None:
    spec.version.value = version
  if label is not None:
    spec.version_label = label
  return spec


def _manager(base, **kwargs):
  return versions_lib.VersionManager(base, MODEL, _fake_load,
                                     poll_wait_seconds=0, **kwargs).start()


def test_broken_newest_version_at_start_up_serves_the_previous(tmp_path,
                                                               caplog):
  base = str(tmp_path)
  _fake_version(base, 1)
  _fake_version(base, 2, broken=True)
  _fake_version(base, 3, variables=False)  # half copied
  os.makedirs(os.path.join(base, ".tmp-4-1@h-0123abcd"))
  with caplog.at_level(logging.WARNING):
    manager = _manager(base)
  assert manager.versions == [1]
  assert manager.resolve(_spec()).version == 1
  log = caplog.text
  assert "Version 3 of model fastbert" in log and "variables.index" in log
  assert "Version 2 of model fastbert" in log and "is broken" in log


def test_no_loadable_version_is_a_clear_start_up_error(tmp_path):
  _fake_version(str(tmp_path), 1, broken=True)
  with pytest.raises(FileNotFoundError, match=r"versions \[1\] failed"):
    _manager(str(tmp_path))


def test_half_copied_version_is_retried_once_its_files_change(tmp_path):
  base = str(tmp_path)
  _fake_version(base, 1)
  _fake_version(base, 2, variables=False)
  manager = _manager(base)
  assert manager.versions == [1]
  manager.poll()  # nothing changed: not tried again, still version 1
  assert manager.versions == [1]
  os.makedirs(os.path.join(base, "2", "variables"))  # the copy completes
  manager.poll()
  assert manager.versions == [2]


def test_latest_n_policy_unloads_old_versions_keeps_labelled(tmp_path):
  base = str(tmp_path)
  for v in (1, 2, 3):
    _fake_version(base, v)
  manager = _manager(base, max_versions=2, labels={"stable": 1})
  assert manager.versions == [1, 2, 3]
  old = manager.resolve(_spec(2))
  _fake_version(base, 4)
  manager.poll()
  assert manager.versions == [1, 3, 4]
  assert old.closed
  assert manager.resolve(_spec(label="stable")).version == 1
  assert manager.resolve(_spec()).version == 4
  with pytest.raises(client_lib.ServingError,
                     match=r"Specific\(fastbert, 2\); loaded versions are "
                     r"\[1, 3, 4\]"):
    manager.resolve(_spec(2))
  with pytest.raises(client_lib.ServingError) as error:
    manager.resolve(_spec(label="canary"))
  assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
  assert "Unrecognized servable version label: canary" in error.value.message
  with pytest.raises(client_lib.ServingError, match="this server serves"):
    manager.resolve(_spec(name="other"))


def test_removed_versions_unload_but_never_the_last(tmp_path):
  base = str(tmp_path)
  _fake_version(base, 1)
  _fake_version(base, 2)
  manager = _manager(base, max_versions=2)
  shutil.rmtree(os.path.join(base, "2"))
  manager.poll()
  assert manager.versions == [1]
  shutil.rmtree(os.path.join(base, "1"))
  manager.poll()
  assert manager.versions == [1]  # still serving rather than nothing


def test_parse_labels():
  assert versions_lib.parse_labels("stable=1, canary=2") == {
      "stable": 1, "canary": 2}
  assert versions_lib.parse_labels("") == {}
  with pytest.raises(ValueError, match=r"'canary' must be LABEL=N"):
    versions_lib.parse_labels("stable=1,canary")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  """Two exported versions with different weights, to copy from."""
  source = str(tmp_path_factory.mktemp("sources"))
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  for seed in (3, 7):
    exporter.export_saved_model(
        testing.tiny_model(seed=seed, sharpen=8.0, dropout=0.0), encoder,
        source)
  return source


def _deploy(sources, source_version, base, version, skip=()):
  """Copies a version as a deployment would: to a hidden name, then a
  rename (skip: names left out, as a half-finished copy)."""
  staging = os.path.join(base, f".copy-{version}")
  shutil.copytree(os.path.join(sources, str(source_version)), staging,
                  ignore=lambda d, names: [n for n in names if n in skip])
  os.rename(staging, os.path.join(base, str(version)))


def _wait_for(condition, what):
  deadline = time.monotonic() + WAIT
  while not condition():
    if time.monotonic() > deadline:
      pytest.fail(f"timed out waiting for {what}")
    time.sleep(0.1)


def _reference(sources, version):
  signature = tf.saved_model.load(
      os.path.join(sources, str(version))).signatures["serving_default"]
  out = signature(text=tf.constant(TEXTS), speed=tf.constant(0.3))
  return out["probabilities"].numpy()


def test_server_switches_to_new_versions_and_keeps_serving_through_broken_ones(
    sources, tmp_path, caplog):
  base = str(tmp_path)
  _deploy(sources, 1, base, 1)
  want = {1: _reference(sources, 1), 2: _reference(sources, 2)}
  assert not np.allclose(want[1], want[2])
  with server_lib.LocalServer(base, MODEL, poll_wait_seconds=0.2) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as client:

      def answer():
        response = client.predict_response(
            {"text": TEXTS, "speed": np.float32(0.3)})
        version = response.model_spec.version.value
        probs = client_lib.protos.make_ndarray(
            response.outputs["probabilities"])
        np.testing.assert_allclose(probs, want[1 if version == 1 else 2],
                                   rtol=1e-6, atol=1e-7)
        return version

      assert answer() == 1
      # Half copied: saved_model.pb there, variables/ not yet.
      with caplog.at_level(logging.WARNING):
        _deploy(sources, 2, base, 2, skip=("variables",))
        _wait_for(lambda: "Version 2 of model fastbert" in caplog.text,
                  "the failed load of version 2 to be logged")
      assert answer() == 1
      assert "still serving version(s) [1]" in caplog.text
      shutil.copytree(os.path.join(sources, "2", "variables"),
                      os.path.join(base, "2", "variables"))
      _wait_for(lambda: server.manager.versions == [2], "version 2")
      assert answer() == 2
      # A broken version 3 (garbage saved_model.pb): version 2 stays.
      os.makedirs(os.path.join(base, "3"))
      with open(os.path.join(base, "3", "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
      with caplog.at_level(logging.WARNING):
        _wait_for(lambda: "Version 3 of model fastbert" in caplog.text,
                  "the failed load of version 3 to be logged")
      assert server.manager.versions == [2] and answer() == 2


def test_server_labels_and_versions_over_grpc(sources, tmp_path):
  base = str(tmp_path)
  _deploy(sources, 1, base, 1)
  _deploy(sources, 2, base, 2)
  with server_lib.LocalServer(base, MODEL, warmup=False, poll_wait_seconds=0,
                              version_labels={"stable": 1, "canary": 2}
                              ) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as client:
      for label, version in (("stable", 1), ("canary", 2)):
        response = client.predict_response(
            {"text": TEXTS, "speed": np.float32(0.3)}, version_label=label)
        assert response.model_spec.version.value == version
        got = client.predict(TEXTS, 0.3, version=version)["probabilities"]
        np.testing.assert_allclose(got, _reference(sources, version),
                                   rtol=1e-6, atol=1e-7)
      assert {"predict_ids", "predict_text", "serving_default"} <= set(
          client.metadata(version_label="stable"))
      with pytest.raises(client_lib.ServingError,
                         match="INVALID_ARGUMENT: Unrecognized servable "
                         "version label: beta"):
        client.predict(TEXTS, 0.3, version_label="beta")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
