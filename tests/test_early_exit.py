"""The early-exit loop against a plain eager reference."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.layers.student_classifier import StudentClassifier

VOCAB = len(testing.TINY_VOCAB)


@pytest.fixture(scope="module")
def model():
  # Sharpened heads: exits spread over all layers at moderate speeds.
  return testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0)


@pytest.fixture(scope="module", params=early_exit.DISPATCHES)
def run(model, request):
  """The compiled loop, once per layer dispatch: every test below holds for
  both."""
  return early_exit.compiled_early_exit(model, _flops(model),
                                        dispatch=request.param)


def _flops(model):
  return flops_lib.flops_table(model.get_config(), 32)


def _reference(model, inputs, speed):
  """Every classifier on the whole batch, then the exit rule in numpy."""
  logits = model(inputs, training=False).numpy().astype(np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  unc = -(probs * np.log(np.maximum(probs, 1e-30))).sum(-1) / np.log(
      model.num_classes)
  num_layers = model.num_layers
  confident = unc < speed
  confident[:, -1] = True
  exit_index = confident.argmax(axis=1)
  rows = np.arange(len(exit_index))
  return dict(probabilities=probs[rows, exit_index], exit_layer=exit_index + 1,
              uncertainty=unc[rows, exit_index],
              label=probs[rows, exit_index].argmax(-1), num_layers=num_layers)


def _call(run, inputs, speed):
  out = run(inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"],
            tf.constant(speed, tf.float32))
  return {k: v.numpy() for k, v in out.items()}


def _assert_matches(got, want):
  np.testing.assert_array_equal(got["exit_layer"], want["exit_layer"])
  np.testing.assert_array_equal(got["label"], want["label"])
  np.testing.assert_allclose(got["probabilities"], want["probabilities"],
                             atol=1e-5)
  np.testing.assert_allclose(got["uncertainty"], want["uncertainty"],
                             atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
def test_batched_equals_reference_and_one_at_a_time(model, run, batch, speed):
  inputs = testing.random_inputs(batch, 11, VOCAB, seed=batch)
  got = _call(run, inputs, speed)
  _assert_matches(got, _reference(model, inputs, speed))
  for i in range(min(batch, 5)):
    length = int(inputs["padding_mask"][i].sum())
    single = {k: v[i:i + 1, :length] for k, v in inputs.items()}
    one = _call(run, single, speed)
    np.testing.assert_array_equal(one["exit_layer"], got["exit_layer"][i:i + 1])
    np.testing.assert_allclose(one["probabilities"],
                               got["probabilities"][i:i + 1], atol=1e-5)


def test_moderate_speed_mixes_exit_layers(model, run):
  inputs = testing.random_inputs(64, 11, VOCAB, seed=64)
  layers = set(_call(run, inputs, 0.3)["exit_layer"].tolist())
  # If this fails the test model no longer exercises the shrinking batch.
  assert len(layers) >= 2, layers


def test_speed_zero_is_the_teacher_for_every_sample(model, run):
  inputs = testing.random_inputs(16, 9, VOCAB, seed=1)
  got = _call(run, inputs, 0.0)
  assert (got["exit_layer"] == model.num_layers).all()
  teacher = tf.nn.softmax(model(inputs, training=False)[:, -1]).numpy()
  np.testing.assert_allclose(got["probabilities"], teacher, atol=1e-5)


def test_speed_one_exits_every_sample_at_layer_one(run):
  inputs = testing.random_inputs(16, 9, VOCAB, seed=2)
  got = _call(run, inputs, 1.0)
  assert (got["uncertainty"] < 1.0).all()
  assert (got["exit_layer"] == 1).all()


@pytest.mark.parametrize("dispatch", early_exit.DISPATCHES)
def test_uncertainty_exactly_one_never_exits_early(dispatch):
  # Zeroed logit kernels/biases give a uniform distribution: uncertainty 1.
  model = testing.tiny_model(seed=3, dropout=0.0)
  for classifier in model.classifiers:
    classifier.logits_dense.kernel.assign(
        tf.zeros_like(classifier.logits_dense.kernel))
  run = early_exit.compiled_early_exit(model, _flops(model), dispatch=dispatch)
  got = _call(run, testing.random_inputs(4, 6, VOCAB), 1.0)
  assert (got["exit_layer"] == model.num_layers).all()


@pytest.mark.parametrize("dispatch", early_exit.DISPATCHES)
def test_speed_zero_costs_the_plain_model_and_skips_students(dispatch,
                                                             monkeypatch):
  """At speed 0 one classifier runs per batch (the teacher), not L.

  The `flops` output is assigned, not measured, so the students' skipping
  is observed directly: every classifier call bumps a counter inside the
  graph (a tf.Variable, so it counts executions, not traces). With
  dispatch="tensor_array" every classifier runs through classifier 0's
  code, so the count is of classifier executions of any kind.
  """
  calls = tf.Variable(0)
  original = StudentClassifier.call

  def counting_call(self, hidden, padding_mask, training=None):
    with tf.control_dependencies([calls.assign_add(1)]):
      return tf.identity(original(self, hidden, padding_mask, training))

  monkeypatch.setattr(StudentClassifier, "call", counting_call)
  model = testing.tiny_model(seed=3, dropout=0.0)  # near-uniform heads
  table = _flops(model)
  run = early_exit.compiled_early_exit(model, table, dispatch=dispatch)
  inputs = testing.random_inputs(8, 8, VOCAB, seed=5)
  counts = {}
  outputs = {}
  # 1e-6: the students run (a speed above 0), yet no sample exits early.
  for speed in (0.0, 1e-6):
    calls.assign(0)
    outputs[speed] = _call(run, inputs, speed)
    counts[speed] = int(calls.numpy())
  assert counts == {0.0: 1, 1e-6: model.num_layers}, counts
  for speed in (0.0, 1e-6):
    assert (outputs[speed]["exit_layer"] == model.num_layers).all()
  np.testing.assert_array_equal(outputs[0.0]["probabilities"],
                                outputs[1e-6]["probabilities"])
  # So the whole batch costs the plain model: L layers and the teacher.
  np.testing.assert_allclose(outputs[0.0]["flops"], table.baseline, rtol=1e-6)
  np.testing.assert_allclose(outputs[1e-6]["flops"],
                             table.at_exit(model.num_layers), rtol=1e-6)


def test_flops_output_follows_the_exit_layer(model, run):
  table = _flops(model)
  got = _call(run, testing.random_inputs(32, 8, VOCAB, seed=4), 0.3)
  want = [table.at_exit(k) for k in got["exit_layer"]]
  np.testing.assert_allclose(got["flops"], want, rtol=1e-6)


@pytest.mark.parametrize("criterion", ["entropy", "patience"])
def test_mixed_speeds_in_one_batch_equal_each_sample_alone(model, criterion):
  """Per-sample speed: every sample exits where its own speed says, with
  the answer (and cost) it gets run alone at that speed."""
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  crit = criteria.ExitCriterion(criterion)
  inputs = testing.random_inputs(24, 10, VOCAB, seed=11)
  speeds = np.tile(np.array([0.0, 0.3, 0.6, 1.0, 0.45, 0.9], np.float32), 4)
  for dispatch in early_exit.DISPATCHES:
    run = early_exit.compiled_early_exit(model, _flops(model), crit, dispatch)
    mixed = _call(run, inputs, speeds)
    # Patience cannot answer at layer 1 (no agreement seen yet).
    assert len(set(mixed["exit_layer"].tolist())) >= (
        2 if criterion == "patience" else 3)
    for i, speed in enumerate(speeds):
      length = int(inputs["padding_mask"][i].sum())
      alone = _call(run, {k: v[i:i + 1, :length] for k, v in inputs.items()},
                    speed)
      for key in ("exit_layer", "label"):
        np.testing.assert_array_equal(mixed[key][i:i + 1], alone[key])
      for key in ("probabilities", "uncertainty", "flops"):
        np.testing.assert_allclose(mixed[key][i:i + 1], alone[key],
                                   atol=1e-6, rtol=1e-6)


def test_speed_must_be_a_scalar_or_one_per_sample(run):
  inputs = testing.random_inputs(3, 5, VOCAB)
  np.testing.assert_array_equal(
      _call(run, inputs, [0.3])["exit_layer"],
      _call(run, inputs, 0.3)["exit_layer"])
  with pytest.raises(tf.errors.InvalidArgumentError, match="one value per"):
    _call(run, inputs, [0.3, 0.5])


def test_empty_batch_returns_empty_outputs(run):
  empty = np.zeros([0, 5], np.int32)
  got = _call(run, dict(token_ids=empty, segment_ids=empty,
                        padding_mask=empty), 0.5)
  assert got["probabilities"].shape == (0, 3)
  assert got["exit_layer"].shape == (0,)


def test_dispatches_give_identical_outputs(model):
  """Same weights, same arithmetic: the two dispatches agree bit for bit."""
  inputs = testing.random_inputs(16, 9, VOCAB, seed=8)
  cond, arrays = (early_exit.compiled_early_exit(model, _flops(model),
                                                 dispatch=d)
                  for d in ("cond", "tensor_array"))
  for speed in (0.0, 0.3):
    a, b = _call(cond, inputs, speed), _call(arrays, inputs, speed)
    for key in early_exit.OUTPUT_KEYS:
      np.testing.assert_array_equal(a[key], b[key])


def test_tensor_array_dispatch_needs_layers_of_one_shape(model):
  mixed = [model.backbone.transformer_layers[0], model.classifiers[0]]
  with pytest.raises(ValueError, match="one shape"):
    early_exit._weight_arrays(mixed)  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="dispatch"):
    early_exit.early_exit(model, *[tf.zeros([1, 3], tf.int32)] * 3, 0.5,
                          _flops(model), dispatch="switch_case")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
