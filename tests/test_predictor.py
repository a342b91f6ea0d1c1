"""Predictor: raw texts in, early-exit answers out, from a model directory or
an export; the package's lazy re-exports."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import fastbert_tf
from fastbert_tf import Predictor
from fastbert_tf.export import exporter
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.testing import saved

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = list(saved.TEXTS)
NAMES = ("neg", "neutral", "pos")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model"))
  model, encoder = saved.save_tiny_model(path, names=NAMES)
  return path, model, encoder


@pytest.fixture(scope="module")
def predictor(model_dir):
  return Predictor.load(model_dir[0])


@pytest.fixture(scope="module")
def export_base(model_dir, tmp_path_factory):
  _, model, encoder = model_dir
  base = str(tmp_path_factory.mktemp("exports"))
  exporter.export_saved_model(model, encoder, base)
  return base


def _reference(model, encoder, texts, speed):
  """The early-exit loop itself on the encoder's ids."""
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  run = early_exit.compiled_early_exit(model, table)
  ids = encoder(tf.constant(texts))
  out = run(ids["token_ids"], ids["segment_ids"], ids["padding_mask"],
            tf.constant(speed, tf.float32))
  return {k: v.numpy() for k, v in out.items()}


def _assert_same(got, want):
  np.testing.assert_array_equal(got.exit_layer, want["exit_layer"])
  np.testing.assert_array_equal(got.label, want["label"])
  np.testing.assert_allclose(got.probabilities, want["probabilities"],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got.flops, want["flops"], rtol=1e-6)
  np.testing.assert_allclose(got.uncertainty, want["uncertainty"],
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
def test_model_dir_answers_equal_the_early_exit_loop(model_dir, predictor,
                                                     speed):
  _, model, encoder = model_dir
  got = predictor.predict(TEXTS, speed=speed)
  _assert_same(got, _reference(model, encoder, TEXTS, speed))
  assert len(got) == len(TEXTS)


def test_moderate_speed_mixes_exit_layers(predictor):
  got = predictor.predict(TEXTS, speed=0.3)
  assert len(set(got.exit_layer.tolist())) > 1, got.exit_layer


def test_per_text_speeds_and_small_batches(model_dir, predictor):
  _, model, encoder = model_dir
  speeds = np.float32([0.0, 1.0, 0.3, 0.3, 1.0, 0.0, 0.3, 1.0, 0.0, 0.3])
  got = predictor.predict(TEXTS, speed=speeds, batch_size=3)
  want = _reference(model, encoder, TEXTS, speeds)
  _assert_same(got, want)
  assert got.exit_layer[1] == 1 and got.exit_layer[0] == model.num_layers


def test_batches_group_lengths_and_answers_keep_input_order():
  seen = []

  def classify(text, text_b, speed):
    seen.append([len(t) for t in text])
    n = len(text)
    return dict(label=np.array([len(t) % 2 for t in text]),
                probabilities=np.zeros([n, 2]), exit_layer=np.ones(n),
                uncertainty=speed, flops=np.array([float(len(t))
                                                   for t in text]))

  predictor = Predictor(classify, num_classes=2, num_layers=3,
                        baseline_flops=10.0, batch_size=2)
  texts = ["aaaa", "b", "ccc", "dd", "eeeee"]
  out = predictor.predict(texts, speed=[0.1, 0.2, 0.3, 0.4, 0.5])
  assert seen == [[1, 2], [3, 4], [5]]
  assert out.flops.tolist() == [4.0, 1.0, 3.0, 2.0, 5.0]
  np.testing.assert_allclose(out.uncertainty, [0.1, 0.2, 0.3, 0.4, 0.5])
  assert out.label.tolist() == [0, 1, 1, 0, 1]
  seen.clear()
  predictor.sort_by_length = False
  predictor.predict(texts, speed=0.5)
  assert seen == [[4, 1], [3, 2], [5]]


def test_length_sorted_batches_answer_as_unsorted(predictor):
  texts = [t * (1 + i % 4) for i, t in enumerate(TEXTS)]
  sorted_out = predictor.predict(texts, speed=0.3, batch_size=3)
  predictor.sort_by_length = False
  try:
    plain = predictor.predict(texts, speed=0.3, batch_size=3)
  finally:
    predictor.sort_by_length = True
  np.testing.assert_array_equal(sorted_out.exit_layer, plain.exit_layer)
  np.testing.assert_array_equal(sorted_out.label, plain.label)
  np.testing.assert_allclose(sorted_out.probabilities, plain.probabilities,
                             rtol=1e-5, atol=1e-6)


def test_names_flops_and_totals(model_dir, predictor):
  _, model, encoder = model_dir
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  assert predictor.label_names == NAMES
  assert (predictor.num_layers, predictor.num_classes) == (3, 3)
  assert predictor.baseline_flops == table.baseline
  out = predictor.predict(TEXTS, speed=1.0)
  assert out.label_name == tuple(NAMES[k] for k in out.label)
  np.testing.assert_allclose(out.flops, [table.at_exit(1)] * len(TEXTS))
  assert out.speedup == pytest.approx(table.baseline / table.at_exit(1))
  assert out.mean_exit_layer == 1.0
  record = out.record(0)
  assert json.loads(json.dumps(record)) == record
  assert set(record) == {"label", "label_name", "probabilities",
                         "exit_layer", "uncertainty", "flops"}


def test_ids_as_names_without_labels_json(tmp_path):
  saved.save_tiny_model(str(tmp_path))
  predictor = Predictor.load(str(tmp_path))
  assert predictor.label_names is None
  out = predictor.predict(["a b"], speed=0.0)
  assert out.label_name == (str(out.label[0]),)


@pytest.mark.parametrize("version_dir", [False, True])
def test_export_answers_equal_the_model_dir(predictor, export_base,
                                            version_dir):
  path = os.path.join(export_base, "1") if version_dir else export_base
  from_export = Predictor.load(path)
  from_dir = predictor
  assert from_export.num_layers == from_dir.num_layers
  assert from_export.baseline_flops == pytest.approx(from_dir.baseline_flops)
  assert from_export.text_pair is False
  speeds = np.float32([0.3] * 5 + [0.0, 1.0, 0.3, 0.0, 1.0])
  got, want = (p.predict(TEXTS, speed=speeds) for p in (from_export,
                                                        from_dir))
  np.testing.assert_array_equal(got.label, want.label)
  np.testing.assert_array_equal(got.exit_layer, want.exit_layer)
  np.testing.assert_allclose(got.probabilities, want.probabilities,
                             rtol=1e-5, atol=1e-6)


def test_connect_to_a_server_answers_as_the_export(export_base):
  from fastbert_tf.serving.server import LocalServer  # pylint: disable=g-import-not-at-top
  local = Predictor.load(export_base)
  speeds = np.float32([0.3] * 5 + [0.0, 1.0, 0.3, 0.0, 1.0])
  with LocalServer(export_base, "fastbert", poll_wait_seconds=0) as server:
    remote = Predictor.connect(server.address, "fastbert",
                               label_names=NAMES, batch_size=4)
    got = remote.predict(TEXTS, speed=speeds)
  want = local.predict(TEXTS, speed=speeds)
  assert (remote.num_layers, remote.num_classes) == (3, 3)
  assert remote.baseline_flops == pytest.approx(local.baseline_flops)
  np.testing.assert_array_equal(got.exit_layer, want.exit_layer)
  np.testing.assert_array_equal(got.label, want.label)
  np.testing.assert_allclose(got.probabilities, want.probabilities,
                             rtol=1e-5, atol=1e-6)
  assert got.label_name == tuple(NAMES[k] for k in want.label)


def test_export_base_uses_the_newest_version(model_dir, export_base,
                                             tmp_path):
  del model_dir
  base = tmp_path / "base"
  base.mkdir()
  os.symlink(os.path.join(export_base, "1"), base / "3")
  (base / "10").mkdir()  # no saved_model.pb: not a version
  (base / "notes").mkdir()
  assert Predictor.load(str(base)).source == str(base / "3")


def test_export_label_names_from_assets(model_dir, export_base, tmp_path):
  del model_dir
  copy = tmp_path / "7"
  subprocess.run(["cp", "-r", os.path.join(export_base, "1"), str(copy)],
                 check=True)
  (copy / "assets.extra" / "labels.json").write_text(json.dumps(
      dict(num_classes=3, names=list(NAMES))))
  assert Predictor.load(str(tmp_path)).label_names == NAMES


def test_pair_model_takes_text_b(tmp_path):
  model, encoder = saved.save_tiny_model(str(tmp_path), text_pair=True)
  predictor = Predictor.load(str(tmp_path))
  assert predictor.text_pair
  out = predictor.predict(["a b", "z"], speed=0.3, text_b=["c", "z z"])
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  run = early_exit.compiled_early_exit(model, table)
  ids = encoder(tf.constant(["a b", "z"]), tf.constant(["c", "z z"]))
  want = run(ids["token_ids"], ids["segment_ids"], ids["padding_mask"],
             tf.constant(0.3))
  np.testing.assert_array_equal(out.exit_layer, want["exit_layer"].numpy())
  with pytest.raises(ValueError, match="pair model: give text_b"):
    predictor.predict(["a"], speed=0.3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(texts=["a", " "]), r"texts\[1\] is empty to the tokenizer"),
    # Issue 21, reproduction 3: invisible-only texts were answered.
    (dict(texts=["a", "\u200b\u200b"]), r"texts\[1\] is empty to the tok"),
    (dict(texts=["\x01\x02", "a"]), r"texts\[0\] is empty to the tok"),
    (dict(texts=["a", "b", "\u200e\u202e"]), r"texts\[2\] is empty to the"),
    (dict(texts=["\u0301\u0301"]), r"texts\[0\] is empty to the tok"),
    (dict(texts=["a", 3]), r"texts\[1\] must be a str, got int"),
    (dict(texts=["a"], speed=1.5), r"speed\[0\] must be a number in \[0, 1\]"),
    (dict(texts=["a", "b"], speed=[0.1, float("nan")]),
     r"speed\[1\] must be a number in \[0, 1\], got nan"),
    (dict(texts=["a", "b"], speed=[0.1]), r"one per text \(2\)"),
    (dict(texts=["a"], text_b=["b"]), "single-text model: do not give"),
    (dict(texts=["a"], batch_size=0), "batch_size must be >= 1"),
])
def test_bad_input_is_named(predictor, kwargs, message):
  with pytest.raises(ValueError, match=message):
    predictor.predict(**kwargs)


def test_export_refuses_invisible_only_text(export_base):
  predictor = Predictor.load(export_base)
  with pytest.raises(ValueError, match=r"texts\[1\] is empty to the tok"):
    predictor.predict(["a", "\u200b\u200e\u0301"])


def test_empty_input_gives_empty_predictions(predictor):
  out = predictor.predict([], speed=0.5)
  assert len(out) == 0 and out.probabilities.shape == (0, 3)


def test_not_a_model_says_what_is_expected(tmp_path):
  (tmp_path / "notes.txt").write_text("x")
  with pytest.raises(FileNotFoundError, match="not a model.*notes.txt"):
    Predictor.load(str(tmp_path))


def test_labels_json_must_match_the_model(tmp_path):
  saved.save_tiny_model(str(tmp_path), names=("a", "b"))
  with pytest.raises(ValueError, match="names 2 classes, the model has 3"):
    Predictor.load(str(tmp_path))


def test_import_fastbert_tf_does_not_import_tensorflow():
  code = ("import sys, fastbert_tf; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
          "print(sorted(fastbert_tf.__all__))")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                       capture_output=True, text=True, check=True)
  assert "Predictor" in out.stdout and "flops_table" in out.stdout


def test_lazy_reexports_resolve_to_the_defining_objects():
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  assert fastbert_tf.Predictor is Predictor
  assert fastbert_tf.load_model is saving.load_model
  assert fastbert_tf.flops_table is flops_lib.flops_table
  assert fastbert_tf.ExitCriterion is criteria.ExitCriterion
  assert fastbert_tf.early_exit is early_exit.early_exit
  for name in fastbert_tf.__all__:
    assert getattr(fastbert_tf, name).__doc__, name
  assert set(fastbert_tf.__all__) <= set(dir(fastbert_tf))
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    fastbert_tf.nope  # pylint: disable=pointless-statement


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
