"""The XLA path for one text (fastbert_tf/inference/single_text.py) and the
export option that puts it in the SavedModel (`--single_text=xla`)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)
from tensorflow_serving.apis import prediction_log_pb2

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.export import tflite
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.inference import single_text
from fastbert_tf.models import saving

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEEDS = (0.0, 0.3, 0.6, 1.0)
BUCKETS = (4, 8, 16)
SEQ = 16


@pytest.fixture(scope="module")
def model():
  return testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)


@pytest.fixture(scope="module")
def texts(model):
  """12 single-text inputs of lengths 2..16, each without padding."""
  ids = testing.random_inputs(12, SEQ, model.backbone.vocabulary_size,
                              seed=3)
  return [{k: v[i:i + 1, :int(ids["padding_mask"][i].sum())]
           for k, v in ids.items()} for i in range(12)]


def _table(model):
  return flops_lib.flops_table(model.get_config(), SEQ)


def _assert_same(got, want):
  assert set(got) == set(early_exit.OUTPUT_KEYS)
  np.testing.assert_array_equal(np.asarray(got["exit_layer"]),
                                np.asarray(want["exit_layer"]))
  np.testing.assert_array_equal(np.asarray(got["label"]),
                                np.asarray(want["label"]))
  for key in ("probabilities", "uncertainty", "flops"):
    np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("criterion", [criteria.ExitCriterion(),
                                       criteria.ExitCriterion("patience")],
                         ids=["entropy", "patience"])
def test_answers_as_the_loop_for_every_text_and_speed(model, texts, criterion):
  run = single_text.single_text_early_exit(model, _table(model), criterion,
                                           BUCKETS)
  loop = early_exit.compiled_early_exit(model, _table(model), criterion)
  exits = set()
  for speed in SPEEDS:
    for f in texts:
      got = run(f["token_ids"], f["segment_ids"], f["padding_mask"],
                tf.constant(speed))
      want = loop(f["token_ids"], f["segment_ids"], f["padding_mask"],
                  tf.constant(speed))
      _assert_same(got, want)
      exits.add((speed, int(got["exit_layer"][0])))
  # The texts exit at different layers at the middle speeds, or the test
  # would not tell an early exit from a late one.
  assert len({e for s, e in exits if 0.0 < s < 1.0}) > 1
  assert {e for s, e in exits if s == 0.0} == {model.num_layers}
  # ... and some reach the teacher although students may answer (the last
  # layer's rule, and patience state carried through every layer).
  assert any(e == model.num_layers for s, e in exits if s > 0.0)


def test_padding_to_a_bucket_changes_nothing(model, texts):
  """A text run at its own length (a bucket of its size) and padded up to a
  longer bucket gives the same answer."""
  table = _table(model)
  exact = single_text.single_text_early_exit(model, table,
                                             buckets=tuple(range(1, SEQ + 1)))
  padded = single_text.single_text_early_exit(model, table, buckets=(SEQ,))
  for f in texts:
    args = (f["token_ids"], f["segment_ids"], f["padding_mask"],
            tf.constant(0.3))
    _assert_same(padded(*args), exact(*args))


def test_buckets_for():
  assert single_text.buckets_for(128) == (16, 32, 64, 128)
  assert single_text.buckets_for(100) == (16, 32, 64, 100)
  assert single_text.buckets_for(16, (8, 4, 8, 64)) == (4, 8, 16)
  with pytest.raises(ValueError, match="bucket lengths must be >= 1"):
    single_text.buckets_for(16, (0, 8))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
  encoder = TextEncoder(testing.TINY_VOCAB, SEQ)
  base = str(tmp_path_factory.mktemp("exports"))
  path = exporter.export_saved_model(
      model, encoder, base, dispatch="tensor_array",
      single_text_buckets=single_text.buckets_for(SEQ, (4, 8)))
  return encoder, path


def _graph_has_xla_program(signature):
  """Whether the signature's function library holds a must-compile
  function (the XLA path), found through its call ops."""
  library = signature.graph.as_graph_def().library
  return any(f.attr["_XlaMustCompile"].b for f in library.function)


def test_export_answers_as_the_loop(model, texts, exported):
  _, path = exported
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  assert _graph_has_xla_program(signature)
  loop = early_exit.compiled_early_exit(model, _table(model))
  for speed in SPEEDS:
    for f in texts[:6]:
      inputs = {k: tf.constant(v) for k, v in f.items()}
      _assert_same(signature(speed=tf.constant(speed), **inputs),
                   loop(**inputs, speed=tf.constant(speed)))
    # A batch takes the loop: same answers as the loop, per sample speed.
    batch = testing.random_inputs(5, SEQ, model.backbone.vocabulary_size,
                                  seed=4)
    batch = {k: tf.constant(v) for k, v in batch.items()}
    _assert_same(signature(speed=tf.constant([speed] * 5), **batch),
                 loop(**batch, speed=tf.constant([speed] * 5)))


def test_bucket_is_chosen_by_the_length_without_trailing_padding(
    model, texts, tmp_path):
  """Buckets (4, 8): a text of 16 real tokens is past the largest bucket and
  the loop answers it (predict_ids accepts up to max_sequence_length); a
  short text padded with zeros to 16 (a fixed-width client) still takes
  the program. Both answer as the loop, in the TF1 loader."""
  encoder = TextEncoder(testing.TINY_VOCAB, SEQ)
  path = exporter.export_saved_model(model, encoder, str(tmp_path),
                                   single_text_buckets=(4, 8))
  long = testing.random_inputs(1, SEQ, model.backbone.vocabulary_size,
                               seed=5, min_length=SEQ)
  short = next(f for f in texts if f["token_ids"].shape[1] <= 8)
  padded = {k: np.pad(v, [[0, 0], [0, SEQ - v.shape[1]]])
            for k, v in short.items()}
  loop = early_exit.compiled_early_exit(model, _table(model))
  cases = [(long, True), (padded, False)]
  wants = [loop(**{k: tf.constant(v) for k, v in f.items()},
                speed=tf.constant(0.3)) for f, _ in cases]
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    sig = tf.compat.v1.saved_model.loader.load(
        sess, ["serve"], path).signature_def["predict_ids"]
    for (f, takes_loop), want in zip(cases, wants):
      feed = {sig.inputs[k].name: v for k, v in f.items()}
      feed[sig.inputs["speed"].name] = np.float32(0.3)
      got = sess.run({k: sig.outputs[k].name for k in early_exit.OUTPUT_KEYS},
                     feed)
      _assert_same(got, want)
      assert _runs_matmuls(_executed_ops(
          sess, sig.outputs["label"].name, feed)) == takes_loop


def test_buckets_past_the_position_table_are_cut_to_it(model, texts):
  """A bucket longer than max_sequence_length would index past the
  position embeddings: it becomes max_sequence_length (as the default's
  last bucket is)."""
  limit = model.backbone.max_sequence_length
  loop = early_exit.compiled_early_exit(model, _table(model))
  f = texts[-1]
  assert f["token_ids"].shape[1] > 4
  args = (f["token_ids"], f["segment_ids"], f["padding_mask"],
          tf.constant(0.3))
  for buckets in ((4, limit + 64), None):
    run = single_text.single_text_early_exit(model, _table(model),
                                             buckets=buckets)
    _assert_same(run(*args), loop(*args))
  with pytest.raises(ValueError, match="bucket lengths must be >= 1"):
    single_text.single_text_early_exit(model, _table(model), buckets=(0, 8))


def _warmup_requests(path):
  return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
          .predict_log.request for r in tf.data.TFRecordDataset(
              os.path.join(path, exporter.WARMUP_FILE))]


@pytest.mark.parametrize("text_pair", [False, True], ids=["single", "pair"])
def test_warmup_covers_every_bucket_and_replays(model, exported, text_pair,
                                                tmp_path):
  """The text signatures get one text per bucket (from the text's own
  token count) and every request replays through the loaded signatures,
  as TF Serving does at load."""
  if text_pair:
    encoder = TextEncoder(testing.TINY_VOCAB, SEQ, text_pair=True)
    path = exporter.export_saved_model(
        model, encoder, str(tmp_path),
        single_text_buckets=single_text.buckets_for(SEQ, (4, 8)))
  else:
    encoder, path = exported
  loaded = tf.saved_model.load(path)
  lengths = {}
  for request in _warmup_requests(path):
    name = request.model_spec.signature_name
    inputs = {k: tf.constant(tf.make_ndarray(v))
              for k, v in request.inputs.items()}
    outputs = loaded.signatures[name](**inputs)
    assert outputs["label"].shape[0] == inputs["speed"].shape[0]
    if "text" in inputs and inputs["text"].shape[0] == 1:
      ids = encoder(inputs["text"], inputs.get("text_b"))
      lengths.setdefault(name, set()).add(int(ids["token_ids"].shape[1]))
  buckets = single_text.buckets_for(SEQ, (4, 8))
  for name in ("serving_default", "predict_text"):
    bucket_of = {min(b for b in buckets if b >= n) for n in lengths[name]}
    # A pair's length grows two tokens at a time: the 1-4 bucket (pair
    # framing alone is 3 tokens plus a token each) may have no text.
    want = set(buckets) - ({4} if text_pair else set())
    assert want <= bucket_of, (name, lengths[name])


def test_warmup_ids_requests_fill_every_bucket(exported):
  _, path = exported
  widths = {int(tf.make_ndarray(r.inputs["token_ids"]).shape[1])
            for r in _warmup_requests(path)
            if r.model_spec.signature_name == "predict_ids"
            and tf.make_ndarray(r.inputs["token_ids"]).shape[0] == 1}
  assert set(single_text.buckets_for(SEQ, (4, 8))) <= widths


def _executed_ops(sess, fetch, feed):
  """Op types TensorFlow's executor ran for one sess.run (traced)."""
  metadata = tf.compat.v1.RunMetadata()
  sess.run(fetch, feed, run_metadata=metadata,
           options=tf.compat.v1.RunOptions(
               trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
  return {n.timeline_label.split("(")[0].split("=")[-1].strip()
          for d in metadata.step_stats.dev_stats for n in d.node_stats
          if n.timeline_label}


def _runs_matmuls(ops):
  return any("MatMul" in op or "Einsum" in op for op in ops)


def test_tf1_session_loader_runs_the_xla_path(model, texts, exported):
  """TF Serving's loader (the TF1 session API) runs the XLA program: for
  one text none of the model's matmuls pass through TF's executor (they
  are inside the compiled program); for two texts they do (the loop)."""
  _, path = exported
  loop = early_exit.compiled_early_exit(model, _table(model))
  wants = [loop(**{k: tf.constant(v) for k, v in f.items()},
                speed=tf.constant(0.3)) for f in texts[:4]]
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    sig = meta.signature_def["predict_ids"]
    for f, want in zip(texts[:4], wants):
      feed = {sig.inputs[k].name: v for k, v in f.items()}
      feed[sig.inputs["speed"].name] = np.float32(0.3)
      got = sess.run({k: sig.outputs[k].name for k in early_exit.OUTPUT_KEYS},
                     feed)
      _assert_same(got, want)
    fetch = sig.outputs["label"].name
    feed = {sig.inputs[k].name: v for k, v in texts[0].items()}
    feed[sig.inputs["speed"].name] = np.float32(0.3)
    assert not _runs_matmuls(_executed_ops(sess, fetch, feed))
    feed = {sig.inputs[k].name: np.concatenate([v, v])
            for k, v in texts[0].items()}
    feed[sig.inputs["speed"].name] = np.float32(0.3)
    assert _runs_matmuls(_executed_ops(sess, fetch, feed))


def test_litert_converts_and_answers_as_the_savedmodel(texts, exported):
  _, path = exported
  runner = tflite.LiteRTRunner(model_content=tflite.convert(path))
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  for speed in (0.0, 0.3):
    for f in texts[:4]:
      want = signature(speed=tf.constant(speed),
                       **{k: tf.constant(v) for k, v in f.items()})
      got = runner(speed=speed, **f)
      np.testing.assert_array_equal(got["exit_layer"], want["exit_layer"])
      np.testing.assert_allclose(got["probabilities"], want["probabilities"],
                                 atol=1e-5)


def _export_cli(model_dir, base, *flags):
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "export", "export_saved_model.py"),
       f"--model_dir={model_dir}", f"--export_base={base}", *flags], cwd=ROOT,
      capture_output=True, text=True, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def test_export_cli_flags(model, tmp_path):
  model_dir, base = str(tmp_path / "model"), str(tmp_path / "base")
  saving.save_model(model, TextEncoder(testing.TINY_VOCAB, SEQ), model_dir)
  bad = _export_cli(model_dir, base, "--single_text=xla", "--xla_buckets=4,x")
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --xla_buckets must be integers, got 4,x")
  assert not os.path.exists(base)
  done = _export_cli(model_dir, base, "--single_text=xla", "--xla_buckets=4",
                     "--dtype_policy=mixed_bfloat16")
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == os.path.join(base, "1")
  # bfloat16 under XLA is slow on CPUs: the export says so.
  assert "--single_text=xla with compute dtype bfloat16" in done.stderr
  assert _graph_has_xla_program(tf.saved_model.load(
      os.path.join(base, "1")).signatures["predict_ids"])


def test_predictor_single_text_xla(model, tmp_path):
  """Predictor.load(model_dir, single_text="xla"): one text at a time
  answers as the loop does, and the option is checked."""
  from fastbert_tf import Predictor  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / "model")
  saving.save_model(model, TextEncoder(testing.TINY_VOCAB, SEQ), model_dir)
  texts = ["a b z", "c", "z z z d e", "q r s t u v w x y", "好 书"]
  loop = Predictor.load(model_dir, batch_size=1)
  xla = Predictor.load(model_dir, batch_size=1, single_text="xla")
  for speed in (0.0, 0.3, 0.6):
    want, got = loop.predict(texts, speed=speed), xla.predict(texts,
                                                              speed=speed)
    np.testing.assert_array_equal(got.exit_layer, want.exit_layer)
    np.testing.assert_array_equal(got.label, want.label)
    np.testing.assert_allclose(got.probabilities, want.probabilities,
                               atol=1e-5)
  with pytest.raises(ValueError, match="single_text must be 'loop' or 'xla'"):
    Predictor.load(model_dir, single_text="XLA")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
