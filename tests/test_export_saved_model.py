"""The serving SavedModel: layout, signature contract, TF2 and TF1 loaders."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)
from tensorflow_serving.apis import prediction_log_pb2

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.export import warmup
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import saving

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXTS = ["a b z", "c", "z z z d e", "好 书", "q r s t u v w x y"]
SPEEDS = (0.0, 0.3, 1.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  base = str(tmp_path_factory.mktemp("exports"))
  path = exporter.export_saved_model(model, encoder, base)
  return model, encoder, base, path


@pytest.fixture(scope="module")
def loaded(exported):
  return tf.saved_model.load(exported[3])


def _eager(model, encoder, texts, speed, texts_b=None):
  run = early_exit.compiled_early_exit(
      model, flops_lib.flops_table(model.get_config(), encoder.max_seq_length))
  ids = encoder(tf.constant(texts),
                None if texts_b is None else tf.constant(texts_b))
  out = run(ids["token_ids"], ids["segment_ids"], ids["padding_mask"],
            tf.constant(speed))
  return ids, {k: v.numpy() for k, v in out.items()}


def _assert_same(got, want):
  assert set(got) == set(early_exit.OUTPUT_KEYS)
  np.testing.assert_array_equal(got["exit_layer"], want["exit_layer"])
  np.testing.assert_array_equal(got["label"], want["label"])
  for key in ("probabilities", "uncertainty", "flops"):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)


def test_layout_is_versioned_atomic_with_warmup(exported):
  model, encoder, base, path = exported
  assert path == os.path.join(base, "1")
  assert sorted(os.listdir(base)) == ["1"]  # no temporary directory left
  warmup_path = os.path.join(path, exporter.WARMUP_FILE)
  logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(warmup_path)]
  assert [l.predict_log.request.model_spec.signature_name for l in logs] == [
      "serving_default", "predict_text", "predict_ids"]
  # float32 [batch] speed: TF Serving's batching session refuses a scalar,
  # and a failed warmup fails the version's load.
  for l in logs:
    speed = tf.make_ndarray(l.predict_log.request.inputs["speed"])
    assert speed.dtype == np.float32 and speed.shape == (2,)
  assert exporter.next_version(base) == 2
  with pytest.raises(FileExistsError, match="immutable"):
    exporter.export_saved_model(model, encoder, base, version=1)
  # A warmup speed the graph would reject must fail before anything is
  # written: TF Serving would refuse to load such a version.
  with pytest.raises(ValueError, match="--warmup_speed=1.5: "):
    exporter.export_saved_model(model, encoder, base, speed=1.5)
  assert sorted(os.listdir(base)) == ["1"]


def _cli_show(path, signature):
  """{("inputs"|"outputs", name): (dtype, shape)} as saved_model_cli shows."""
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--dir", path, "--tag_set", "serve",
                          "--signature_def", signature],
                         capture_output=True, text=True, check=True).stdout
  pattern = (r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+"
             r"shape: (\([^)]*\)|unknown_rank)")
  return {(kind, name): (dtype, shape)
          for kind, name, dtype, shape in re.findall(pattern, shown)}


def test_signature_contract_as_saved_model_cli_shows_it(exported):
  path = exported[3]
  outputs = {("outputs", "probabilities"): ("DT_FLOAT", "(-1, 3)"),
             ("outputs", "label"): ("DT_INT32", "(-1)"),
             ("outputs", "exit_layer"): ("DT_INT32", "(-1)"),
             ("outputs", "uncertainty"): ("DT_FLOAT", "(-1)"),
             ("outputs", "flops"): ("DT_FLOAT", "(-1)")}
  # A scalar or float32 [batch]: unknown rank, so one signature takes both.
  speed = {("inputs", "speed"): ("DT_FLOAT", "unknown_rank")}
  ids = {("inputs", n): ("DT_INT32", "(-1, -1)")
         for n in ("token_ids", "segment_ids", "padding_mask")}
  text = {("inputs", "text"): ("DT_STRING", "(-1)")}
  assert _cli_show(path, "predict_ids") == {**ids, **speed, **outputs}
  for name in ("serving_default", "predict_text"):
    assert _cli_show(path, name) == {**text, **speed, **outputs}


@pytest.mark.parametrize("speed", SPEEDS)
def test_tf2_loader_equals_eager(exported, loaded, speed):
  model, encoder, _, _ = exported
  ids, want = _eager(model, encoder, TEXTS, speed)
  for name in ("serving_default", "predict_text"):
    got = loaded.signatures[name](text=tf.constant(TEXTS),
                                  speed=tf.constant(speed))
    _assert_same({k: v.numpy() for k, v in got.items()}, want)
  got = loaded.signatures["predict_ids"](speed=tf.constant(speed), **ids)
  _assert_same({k: v.numpy() for k, v in got.items()}, want)


def test_tf1_session_loader_equals_eager(exported):
  """tf.compat.v1 loader: the stand-in for tensorflow_model_server."""
  model, encoder, _, path = exported
  cases = {s: _eager(model, encoder, TEXTS, s) for s in SPEEDS}
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    for speed, (ids, want) in cases.items():
      for name in ("serving_default", "predict_ids"):
        sig = meta.signature_def[name]
        values = ({"text": np.array(TEXTS, dtype=object)} if "text" in sig.inputs
                  else {k: v.numpy() for k, v in ids.items()})
        values["speed"] = np.float32(speed)
        feed = {sig.inputs[k].name: v for k, v in values.items()}
        got = sess.run({k: v.name for k, v in sig.outputs.items()}, feed)
        _assert_same(got, want)


@pytest.mark.parametrize("change,message", [
    (dict(speed=float("nan")), "speed must be a number in"),
    (dict(speed=1.5), "speed must be a number in"),
    (dict(token_ids=[[2, 99, 3]]), "token_ids must lie in"),
    (dict(segment_ids=[[0, 5, 0]]), "segment_ids must lie in"),
    (dict(padding_mask=[[1, 1]]), "padding_mask must have the shape"),
    (dict(token_ids=[[2, 7, 3], [2, 8, 3]], segment_ids=[[0, 0, 0]] * 2,
          padding_mask=[[1, 1, 1], [0, 0, 0]]),
     "padding_mask has a row of zeros"),
])
def test_bad_requests_are_invalid_argument_naming_the_input(loaded, change,
                                                            message):
  inputs = dict(token_ids=[[2, 7, 3]], segment_ids=[[0, 0, 0]],
                padding_mask=[[1, 1, 1]], speed=0.5)
  inputs.update(change)
  tensors = {k: tf.constant(v, tf.float32 if k == "speed" else tf.int32)
             for k, v in inputs.items()}
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    loaded.signatures["predict_ids"](**tensors)


@pytest.mark.parametrize("texts,index", [
    (["a", ""], 1), ([" \t"], 0),
    # Issue 21, reproduction 3: answered from [CLS] [SEP] before.
    (["\u200b\u200d", "a"], 0), (["a", "b", "\x01\x7f"], 2),
    (["\u200e\u202e"], 0), (["a", "\u0301\u0308"], 1),
])
def test_text_signature_refuses_texts_empty_to_the_tokenizer(loaded, texts,
                                                             index):
  for name in ("serving_default", "predict_text"):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"text\W+ is empty to the tokenizer.*"
                       rf"at indices\] \[{index}\]"):
      loaded.signatures[name](text=tf.constant(texts),
                              speed=tf.constant(0.5))
  lengths = loaded.content_lengths(tf.constant(texts)).numpy()
  assert lengths[index] == 0 and (np.delete(lengths, index) > 0).all()


def test_pair_model_text_signature_takes_text_b(tmp_path):
  model = testing.tiny_model(seed=3, sharpen=8.0, dropout=0.0)
  encoder = TextEncoder(testing.TINY_VOCAB, 16, text_pair=True)
  path = exporter.export_saved_model(model, encoder, str(tmp_path))
  loaded = tf.saved_model.load(path)
  a, b = ["a b", "c d e"], ["z", "y x"]
  _, want = _eager(model, encoder, a, 0.3, texts_b=b)
  got = loaded.signatures["serving_default"](
      text=tf.constant(a), text_b=tf.constant(b), speed=tf.constant(0.3))
  _assert_same({k: v.numpy() for k, v in got.items()}, want)


@pytest.mark.parametrize("name", ["topk_entropy", "max_prob", "patience"])
def test_exit_criterion_is_compiled_into_the_export(exported, tmp_path, name):
  model, encoder, _, _ = exported
  criterion = criteria.ExitCriterion(name, top_k=2)
  path = exporter.export_saved_model(model, encoder, str(tmp_path),
                                   criterion=criterion)
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  run = early_exit.compiled_early_exit(
      model, flops_lib.flops_table(model.get_config(), encoder.max_seq_length),
      criterion)
  inputs = testing.random_inputs(32, 10, len(testing.TINY_VOCAB), seed=6)
  for speed in (0.0, 0.5, 0.9):
    want = run(speed=tf.constant(speed), **inputs)
    got = signature(speed=tf.constant(speed),
                    **{k: tf.constant(v) for k, v in inputs.items()})
    _assert_same({k: v.numpy() for k, v in got.items()},
                 {k: v.numpy() for k, v in want.items()})


@pytest.mark.parametrize("name", ["entropy", "patience"])
def test_tensor_array_dispatch_export_equals_eager_in_both_loaders(
    exported, tmp_path, name):
  """The faster-in-TF dispatch: same answers through TF2 and the TF1 session
  loader (TensorArrays of resource reads must survive the TF1 path)."""
  model, encoder, _, _ = exported
  criterion = criteria.ExitCriterion(name)
  path = exporter.export_saved_model(model, encoder, str(tmp_path),
                                   criterion=criterion, dispatch="tensor_array")
  run = early_exit.compiled_early_exit(
      model, flops_lib.flops_table(model.get_config(), encoder.max_seq_length),
      criterion)
  inputs = testing.random_inputs(24, 10, len(testing.TINY_VOCAB), seed=9)
  wants = {s: {k: v.numpy() for k, v in run(speed=tf.constant(s),
                                             **inputs).items()}
           for s in (0.0, 0.5, 0.9)}
  assert any(len(set(w["exit_layer"].tolist())) >= 2 for w in wants.values())
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  for speed, want in wants.items():
    got = signature(speed=tf.constant(speed),
                    **{k: tf.constant(v) for k, v in inputs.items()})
    _assert_same({k: v.numpy() for k, v in got.items()}, want)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    sig = tf.compat.v1.saved_model.loader.load(
        sess, ["serve"], path).signature_def["predict_ids"]
    for speed, want in wants.items():
      feed = {sig.inputs[k].name: v for k, v in inputs.items()}
      feed[sig.inputs["speed"].name] = np.float32(speed)
      _assert_same(sess.run({k: v.name for k, v in sig.outputs.items()}, feed),
                   want)


def _host():
  return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def test_stale_tmp_dirs_of_dead_exports_are_removed(exported, tmp_path):
  model, encoder, _, _ = exported
  base = str(tmp_path)
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout
  names = {"dead": f".tmp-3-{dead.strip()}@{_host()}-0123abcd",
           "alive": f".tmp-4-{os.getpid()}@{_host()}-0123abcd",
           "old": ".tmp-5-0123abcd",  # an older format: judged by its age
           "recent": ".tmp-6-4567abcd"}
  for name in names.values():
    os.makedirs(os.path.join(base, name, "variables"))
  two_days_ago = time.time() - 2 * 24 * 3600
  for path in (os.path.join(base, names["old"]),
               os.path.join(base, names["old"], "variables")):
    os.utime(path, (two_days_ago, two_days_ago))
  exporter.export_saved_model(model, encoder, base)
  assert sorted(os.listdir(base)) == sorted(
      ["1", names["alive"], names["recent"]])


def test_racing_exports_end_as_two_versions(exported, tmp_path, monkeypatch):
  """Two exports that chose the same free version: the loser of the
  rename takes the next number instead of failing (AlreadyExistsError)."""
  model, encoder, _, _ = exported
  base = str(tmp_path)
  monkeypatch.setattr(exporter, "next_version", lambda b: 1)  # a stale view
  first = exporter.export_saved_model(model, encoder, base)
  second = exporter.export_saved_model(model, encoder, base)  # chose 1 too
  assert (first, second) == (os.path.join(base, "1"), os.path.join(base, "2"))
  assert sorted(os.listdir(base)) == ["1", "2"]
  assert "predict_ids" in tf.saved_model.load(second).signatures
  # An explicit version that another export takes meanwhile: a clear error,
  # and this export's temporary directory is gone.
  write = warmup.write_warmup_requests
  monkeypatch.setattr(warmup, "write_warmup_requests", lambda *a: (
      write(*a), os.makedirs(os.path.join(base, "7", "variables"))))
  with pytest.raises(FileExistsError, match="7 appeared while this export"):
    exporter.export_saved_model(model, encoder, base, version=7)
  assert sorted(os.listdir(base)) == ["1", "2", "7"]


def _export_cli(model_dir, base):
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "export", "export_saved_model.py"),
       f"--model_dir={model_dir}", f"--export_base={base}"], cwd=ROOT,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def _when_tmp_appears(proc, base):
  """Waits for the export's .tmp-* directory (or the process's end)."""
  deadline = time.monotonic() + 600
  while time.monotonic() < deadline and proc.poll() is None:
    if any(n.startswith(".tmp-") for n in os.listdir(base)):
      return True
    time.sleep(0.02)
  return False


def test_killed_exports_leave_nothing_behind(exported, tmp_path):
  """SIGTERM: the export removes its own temporary directory. kill -9:
  the next export removes it."""
  model, encoder, _, _ = exported
  model_dir, base = str(tmp_path / "model"), str(tmp_path / "base")
  saving.save_model(model, encoder, model_dir)
  os.makedirs(base)
  for sig in (signal.SIGTERM, signal.SIGKILL):
    proc = _export_cli(model_dir, base)
    try:
      assert _when_tmp_appears(proc, base), proc.communicate()[1][-2000:]
      proc.send_signal(sig)
      assert proc.wait(timeout=120) == (
          128 + sig if sig == signal.SIGTERM else -sig)
    finally:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
    left = [n for n in os.listdir(base) if n.startswith(".tmp-")]
    assert len(left) == (0 if sig == signal.SIGTERM else 1), left
  exporter.export_saved_model(model, encoder, base)
  assert os.listdir(base) == ["1"]


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
