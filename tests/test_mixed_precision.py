"""Mixed precision end to end: training steps, learning, the early-exit
loop, the one-pass sweep, the SavedModel, and saving, under each policy."""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.data import pipeline
from fastbert_tf.data.sources import TextDataset
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.inference import sweep
from fastbert_tf.models import phases
from fastbert_tf.models import saving

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

MIXED = ("mixed_float16", "mixed_bfloat16")
VOCAB = len(testing.TINY_VOCAB)
# bfloat16 keeps 8 mantissa bits (~0.4% steps), float16 11.
TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 4e-2}


def _batch(seed=0):
  inputs = testing.random_inputs(8, 7, VOCAB, seed=seed)
  return inputs, np.arange(8, dtype=np.int32) % 3


def _step_sizes(policy, phase):
  """Largest weight change of one SGD step, per weight group."""
  model = testing.tiny_model(seed=1, dropout=0.0, dtype=policy)
  model.phase_config = phases.PhaseConfig(phase)
  model.compile(keras.optimizers.SGD(0.5))
  layer_0 = model.backbone.transformer_layers[0]
  groups = {"teacher": model.teacher.logits_dense.kernel,
            "layer_0": layer_0._feedforward_output_dense.kernel,  # pylint: disable=protected-access
            "student_0": model.students[0].logits_dense.kernel}
  before = {k: v.numpy().copy() for k, v in groups.items()}
  inputs, labels = _batch()
  model.train_on_batch(inputs, None if phase == "distill" else labels)
  return {k: float(np.abs(v.numpy() - before[k]).max())
          for k, v in groups.items()}


@pytest.mark.parametrize("policy", MIXED)
@pytest.mark.parametrize("phase", ["finetune", "distill"])
def test_one_step_moves_weights_as_far_as_float32(policy, phase):
  # An unscaled-then-unscaled loss (the old bug) moves them ~32,768x less.
  want = _step_sizes("float32", phase)
  got = _step_sizes(policy, phase)
  trained = ["teacher", "layer_0"] if phase == "finetune" else ["student_0"]
  for group in trained:
    assert want[group] > 0
    assert 0.5 < got[group] / want[group] < 2.0, (group, got, want)
  if phase == "distill":
    assert got["teacher"] == 0.0 and got["layer_0"] == 0.0


def test_mixed_float16_compiles_a_loss_scale_optimizer():
  model = testing.tiny_model(dtype="mixed_float16")
  model.compile(keras.optimizers.SGD(0.1))
  assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def _letter_data(n, seed):
  rows = testing.letter_task(n, seed=seed)
  return TextDataset([t for _, t in rows], None,
                     np.array([l for l, _ in rows], np.int32), "letters")


def _learned_accuracy(policy):
  keras.utils.set_random_seed(0)
  model = testing.tiny_model(seed=0, dropout=0.0, num_classes=2, dtype=policy)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  train = pipeline.make_dataset(_letter_data(256, 1), encoder, 16,
                                shuffle=True, seed=0)
  dev = pipeline.make_dataset(_letter_data(128, 2), encoder, 64)
  model.phase_config = phases.PhaseConfig("finetune")
  model.compile(keras.optimizers.Adam(3e-3))
  model.fit(train, epochs=6, verbose=0)
  return model.evaluate(dev, verbose=0, return_dict=True)[
      f"accuracy_layer_{model.num_layers}"]


def test_each_policy_learns_the_tiny_task_within_five_points_of_float32():
  reference = _learned_accuracy("float32")
  assert reference >= 0.9, reference  # the task is learnable at all
  for policy in MIXED:
    assert _learned_accuracy(policy) >= reference - 0.05, policy


def _pair(policy):
  """A float32 model and a `policy` model with the same weights."""
  reference = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)
  mixed = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0, dtype=policy)
  mixed.set_weights(reference.get_weights())
  return reference, mixed


@pytest.mark.parametrize("policy", MIXED)
@pytest.mark.parametrize("dispatch", early_exit.DISPATCHES)
def test_early_exit_outputs_float32_close_to_float32(policy, dispatch):
  reference, mixed = _pair(policy)
  inputs = testing.random_inputs(32, 9, VOCAB, seed=3)
  outs = []
  for model in (reference, mixed):
    run = early_exit.compiled_early_exit(
        model, flops_lib.flops_table(model.get_config(), 32),
        dispatch=dispatch)
    outs.append(run(inputs["token_ids"], inputs["segment_ids"],
                    inputs["padding_mask"], tf.constant(0.0)))
  want, got = outs
  assert got["probabilities"].dtype == tf.float32
  assert got["uncertainty"].dtype == tf.float32
  np.testing.assert_allclose(got["probabilities"], want["probabilities"],
                             atol=TOLERANCE[policy])


@pytest.mark.parametrize("policy", MIXED)
def test_one_pass_sweep_scores_close_to_float32(policy):
  reference, mixed = _pair(policy)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  data = pipeline.make_dataset(_letter_data(48, 3), encoder, 16)
  passes = [sweep.collect(m, data, criteria.ExitCriterion())
            for m in (reference, mixed)]
  np.testing.assert_allclose(passes[1].scores, passes[0].scores,
                             atol=5 * TOLERANCE[policy])


@pytest.mark.parametrize("policy", MIXED)
def test_saved_model_signature_is_float32_and_close(policy, tmp_path):
  from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
  reference, mixed = _pair(policy)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  texts = tf.constant(["a b c", "z y", "好 书 差"])
  got = {}
  for name, model in (("ref", reference), ("mixed", mixed)):
    path = exporter.export_saved_model(model, encoder, str(tmp_path / name))
    signature = tf.saved_model.load(path).signatures["predict_text"]
    got[name] = signature(text=texts, speed=tf.constant(0.0))
  assert got["mixed"]["probabilities"].dtype == tf.float32
  np.testing.assert_allclose(got["mixed"]["probabilities"],
                             got["ref"]["probabilities"],
                             atol=TOLERANCE[policy])


@pytest.mark.parametrize("policy", MIXED)
def test_policy_survives_config_and_save_load(policy, tmp_path):
  model = testing.tiny_model(dtype=policy)
  again = type(model).from_config(model.get_config())
  assert again.dtype_policy.name == policy
  assert again.backbone.transformer_layers[-1].compute_dtype == (
      policy.split("_")[1])
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  saving.save_model(model, encoder, str(tmp_path))
  loaded, _ = saving.load_model(str(tmp_path))
  assert loaded.dtype_policy.name == policy
  assert loaded.students[0].input_dense.compute_dtype == policy.split("_")[1]
  # Logits stay float32 whatever the policy.
  assert loaded.teacher.logits_dense.compute_dtype == "float32"
  as_float32, _ = saving.load_model(str(tmp_path), dtype="float32")
  assert as_float32.backbone.embeddings.compute_dtype == "float32"


def test_uer_layer_norm_statistics_are_float32():
  from fastbert_tf.layers.bert_embeddings import UerLayerNormalization  # pylint: disable=g-import-not-at-top
  # Exactly representable in float16, but the sum of squared deviations
  # (64 * ~60^2) overflows float16's 65,504: computed in float16 it is inf.
  x = np.round(np.random.default_rng(0).normal(0.0, 60.0, size=(2, 64)))
  layer = UerLayerNormalization(dtype="mixed_float16")
  out = layer(tf.constant(x, tf.float16))
  assert out.dtype == tf.float16
  want = x / 1.0 - x.mean(-1, keepdims=True)
  want /= x.std(-1, ddof=1, keepdims=True) + 1e-6
  np.testing.assert_allclose(out.numpy().astype(np.float64), want, atol=5e-3)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
