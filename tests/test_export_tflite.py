"""TFLite conversion keeps the early exit; LiteRT equals the SavedModel."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (tokenizer ops of the SavedModel)

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.export import tflite
from fastbert_tf.inference import criteria
from fastbert_tf.testing import invisible_text as invisible

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  return exporter.export_saved_model(
      model, encoder, str(tmp_path_factory.mktemp("exports")))


@pytest.fixture(scope="module")
def content(saved_model):
  return tflite.convert(saved_model)


@pytest.fixture(scope="module")
def runner(content):
  return tflite.LiteRTRunner(content)


def test_graph_keeps_the_loop_and_builtin_ops_only(content):
  ops = tflite.op_names(content)
  assert "WHILE" in ops and "IF" in ops  # the loop and the layer dispatch
  assert "CUSTOM" not in ops


def _assert_litert_equals(signature, runner, speed, inputs):
  """Runs both on `inputs`; exit layers and labels identical, probabilities
  within 1e-5. Returns (LiteRT outputs, SavedModel outputs), numpy."""
  want = signature(speed=tf.constant(speed),
                   **{k: tf.constant(v) for k, v in inputs.items()})
  want = {k: v.numpy() for k, v in want.items()}
  got = runner(speed=speed, **inputs)
  np.testing.assert_array_equal(got["exit_layer"], want["exit_layer"])
  np.testing.assert_array_equal(got["label"], want["label"])
  np.testing.assert_allclose(got["probabilities"], want["probabilities"],
                             atol=1e-5)
  return got, want


@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
def test_litert_equals_saved_model(saved_model, runner, speed):
  inputs = testing.random_inputs(24, 12, len(testing.TINY_VOCAB), seed=11)
  got, want = _assert_litert_equals(
      tf.saved_model.load(saved_model).signatures["predict_ids"], runner,
      speed, inputs)
  np.testing.assert_allclose(got["flops"], want["flops"], rtol=1e-6)
  if speed == 0.3:  # the batch must really mix early and late exits
    assert len(set(got["exit_layer"].tolist())) >= 2


def test_litert_mixed_speed_batch_equals_saved_model(saved_model, runner):
  """speed float32 [batch]: one speed per sample in one LiteRT call gives
  the SavedModel's per-sample answers; scalar calls still work after it."""
  signature = tf.saved_model.load(saved_model).signatures["predict_ids"]
  inputs = testing.random_inputs(24, 12, len(testing.TINY_VOCAB), seed=11)
  speeds = np.tile(np.float32([0.0, 0.3, 0.6, 1.0]), 6)
  got, want = _assert_litert_equals(signature, runner, speeds, inputs)
  assert len(set(got["exit_layer"].tolist())) >= 3
  np.testing.assert_allclose(got["flops"], want["flops"], rtol=1e-6)
  for speed in (0.3, speeds[::-1].copy(), 1.0):  # the speed's rank changes
    _assert_litert_equals(signature, runner, speed, inputs)


def test_batch_size_and_length_can_change_between_calls(runner):
  for batch, seq in ((1, 5), (7, 16), (2, 3)):
    inputs = testing.random_inputs(batch, seq, len(testing.TINY_VOCAB))
    out = runner(speed=0.5, **inputs)
    assert out["probabilities"].shape == (batch, 3)


def test_dynamic_quantization_still_exits(saved_model, tmp_path):
  """int8 weights really, and still the float model's exits and answers."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  # The converter leaves tensors under 1,024 elements in float32, which is
  # every tensor of the usual test model: this one has larger kernels.
  model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0, hidden_dim=32,
                             intermediate_dim=64)
  path = exporter.export_saved_model(model, TextEncoder(testing.TINY_VOCAB, 16),
                                   str(tmp_path))
  contents = {q: tflite.convert(path, quantize=q) for q in ("none", "dynamic")}

  def int8_tensors(content):
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    return sum(t.type == 9 for g in graph.subgraphs for t in g.tensors)  # INT8

  assert int8_tensors(contents["none"]) == 0
  assert int8_tensors(contents["dynamic"]) >= 10
  assert len(contents["dynamic"]) < 0.8 * len(contents["none"])
  assert "WHILE" in tflite.op_names(contents["dynamic"])
  quantized = tflite.LiteRTRunner(contents["dynamic"])
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  inputs = testing.random_inputs(64, 10, len(testing.TINY_VOCAB), seed=3)
  for speed in (0.0, 0.3, 1.0):
    want = signature(speed=tf.constant(speed),
                     **{k: tf.constant(v) for k, v in inputs.items()})
    want = {k: v.numpy() for k, v in want.items()}
    got = quantized(speed=speed, **inputs)
    # int8 weights move the probabilities by ~0.01 here: a sample near a
    # threshold may exit one layer apart, hardly any answers differently.
    same_exit = got["exit_layer"] == want["exit_layer"]
    assert same_exit.mean() >= 0.9, (speed, got["exit_layer"])
    assert (got["label"] == want["label"]).mean() >= 0.9, speed
    np.testing.assert_allclose(got["probabilities"][same_exit],
                               want["probabilities"][same_exit], atol=0.1)
    if speed == 0.0:  # the teacher for everyone
      assert (got["exit_layer"] == model.num_layers).all()
    if speed == 0.3:  # it exits early, at more than one layer
      assert len(set(got["exit_layer"].tolist())) >= 2
      assert got["exit_layer"].mean() < model.num_layers
  assert (got["exit_layer"] == 1).all()  # speed 1: everyone at layer 1
  with pytest.raises(ValueError, match="quantize"):
    tflite.convert(saved_model, quantize="int4")


def _text_batch(n, seed):
  """n random texts over the tiny vocab (letters, CJK, unknown characters),
  of very different lengths, some truncated at 16. (No empty text: the
  text signatures refuse it, fastbert_tf/data/tokenizer.py's rule.)"""
  rng = np.random.default_rng(seed)
  chars = list("abcdefghijklmnopqrstuvwxyz") + ["好", "书", "差", "é", "?"]
  return ["".join(rng.choice(chars, size=rng.integers(1, 6))) + " " +
          " ".join(rng.choice(chars, size=rng.integers(0, 20)))
          for _ in range(n)]


@pytest.fixture(scope="module",
                params=[(False, "bert"), (True, "bert"), (False, "uer"),
                        (True, "uer"), (False, "xlmr")],
                ids=["single", "pair", "uer-single", "uer-pair",
                     "sentencepiece"])
def text_models(request, tmp_path_factory):
  """(saved model dir, LiteRT runner of its raw-text TFLite model, its
  .tflite bytes); UER packing needs the 3-row segment table; "xlmr" is a
  SentencePiece model with multilingual-e5's text prefix."""
  text_pair, input_format = request.param
  uer = input_format == "uer"
  if input_format == "xlmr":
    from fastbert_tf.testing import sentencepiece_models  # pylint: disable=g-import-not-at-top
    proto = sentencepiece_models.train(dict(bos=0, pad=1, eos=2, unk=3))
    model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0,
                               vocabulary_size=120)
    encoder = SentencePieceEncoder(proto, 16, text_prefix="query: ")
    path = exporter.export_saved_model(
        model, encoder, str(tmp_path_factory.mktemp("text_exports")))
    content = tflite.convert(path, variant="text")
    return path, tflite.LiteRTRunner(content), content
  # Seeds chosen so that speed 0.3 mixes exit layers in every variant.
  model = testing.tiny_model(seed=7 if uer else 5, sharpen=8.0, dropout=0.0,
                             num_segments=3 if uer else 2)
  encoder = TextEncoder(testing.TINY_VOCAB, 16, text_pair=text_pair,
                        input_format=input_format)
  path = exporter.export_saved_model(
      model, encoder, str(tmp_path_factory.mktemp("text_exports")))
  content = tflite.convert(path, variant="text")
  return path, tflite.LiteRTRunner(content), content


@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
def test_raw_text_litert_equals_saved_model(text_models, speed):
  path, runner, _ = text_models
  inputs = dict(text=_text_batch(24, seed=2))
  if "text_b" in runner.input_names:
    inputs["text_b"] = _text_batch(24, seed=3)
  got, _ = _assert_litert_equals(
      tf.saved_model.load(path).signatures["predict_text"], runner, speed,
      inputs)
  if speed == 0.3:
    assert len(set(got["exit_layer"].tolist())) >= 2


def test_raw_text_model_uses_only_tf_text_custom_ops(text_models, content):
  _, runner, text_content = text_models
  assert runner.variant == "text"
  ops = set(tflite.custom_op_names(text_content))
  assert ops <= tflite.TEXT_CUSTOM_OPS
  assert ("FastWordpieceTokenizeWithOffsets" in ops or
          "TFText>FastSentencepieceTokenize" in ops), ops
  assert not tflite.custom_op_names(content)  # the ids model: builtins only
  with pytest.raises(ValueError, match="takes"):
    runner(speed=0.5, token_ids=np.zeros([1, 3], np.int32))


def test_raw_text_model_refuses_texts_empty_to_the_tokenizer(text_models):
  """TFLite drops the SavedModel's Assert, so the converted text model would
  answer these from [CLS] [SEP] alone (issue 21): it returns the text
  rule's content lengths instead, and LiteRTRunner refuses the call as the
  signature does, naming input and index. What is empty is the tokenizer's
  call (the SavedModel's content_lengths): WordPiece drops zero-width and
  combining characters, the test SentencePiece model keeps them as pieces;
  blank texts are empty to both."""
  path, runner, _ = text_models
  lengths = tf.saved_model.load(path).content_lengths
  good = _text_batch(3, seed=4)
  bad = ["", " \t", "\u200b\u200b"] + [
      invisible.invisible_text(alphabet, seed)
      for seed, alphabet in enumerate(invisible.CLASSES.values())]
  empty = [int(n) == 0 for n in lengths(tf.constant(bad)).numpy()]
  assert empty[:2] == [True, True]
  for name in runner.input_names:
    for text, is_empty in zip(bad, empty):
      inputs = {n: list(good) for n in runner.input_names}
      inputs[name] = good[:1] + [text] + good[1:2]
      if is_empty:
        with pytest.raises(ValueError, match=rf"input '{name}'\[1\] is "
                           "empty to the tokenizer"):
          runner(speed=0.5, **inputs)
      else:  # not empty to this tokenizer: answered, as the SavedModel does
        assert len(runner(speed=0.5, **inputs)["label"]) == 3


def test_custom_ops_without_a_kernel_are_refused(saved_model, monkeypatch):
  # As if tf-text shipped no kernel for its tokenizer: the conversion must
  # fail naming the op rather than write a model LiteRT cannot load.
  monkeypatch.setattr(tflite, "TEXT_CUSTOM_OPS",
                      frozenset({"FastBertNormalize"}))
  with pytest.raises(ValueError, match="FastWordpieceTokenizeWithOffsets"):
    tflite.convert(saved_model, variant="text")


def test_unknown_variant_and_missing_model_are_refused(saved_model):
  with pytest.raises(ValueError, match="variant"):
    tflite.convert(saved_model, variant="audio")
  with pytest.raises(ValueError, match="model_content or model_path"):
    tflite.LiteRTRunner()


def test_patience_criterion_survives_conversion(tmp_path):
  """A stateful criterion: the per-sample agreement counts ride through the
  WHILE body and its IFs."""
  model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)
  path = exporter.export_saved_model(
      model, TextEncoder(testing.TINY_VOCAB, 16), str(tmp_path),
      criterion=criteria.ExitCriterion("patience"))
  runner = tflite.LiteRTRunner(tflite.convert(path))
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  inputs = testing.random_inputs(24, 12, len(testing.TINY_VOCAB), seed=4)
  layers_seen = set()
  for speed in (0.0, 0.5, 0.9):
    got, _ = _assert_litert_equals(signature, runner, speed, inputs)
    layers_seen |= set(got["exit_layer"].tolist())
  assert len(layers_seen) >= 2  # some samples left early


def test_empty_batch_runs_in_litert(runner):
  empty = np.zeros([0, 4], np.int32)
  out = runner(speed=0.5, token_ids=empty, segment_ids=empty,
               padding_mask=empty)
  assert out["probabilities"].shape == (0, 3)


def test_cli_writes_the_file(saved_model, tmp_path):
  output = tmp_path / "model.tflite"
  result = subprocess.run(
      [sys.executable, "export/export_tflite.py", f"--saved_model={saved_model}",
       f"--output={output}"], cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert output.stat().st_size > 0 and "bytes" in result.stdout
  text_output = tmp_path / "text.tflite"
  result = subprocess.run(
      [sys.executable, "export/export_tflite.py", f"--saved_model={saved_model}",
       f"--output={text_output}", "--variant=text"], cwd=ROOT,
      capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert tflite.LiteRTRunner(model_path=str(text_output)).variant == "text"
  bad = subprocess.run(
      [sys.executable, "export/export_tflite.py", f"--saved_model={tmp_path}",
       f"--output={output}"], cwd=ROOT, capture_output=True, text=True)
  assert bad.returncode != 0 and "no saved_model.pb" in bad.stderr


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
