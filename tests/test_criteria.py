"""Exit criteria: scores, the loop form against the one-pass form, and the
early-exit loop under every criterion against a numpy reference."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib

VOCAB = len(testing.TINY_VOCAB)


def _softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def numpy_scores(name, logits, top_k=2):
  """Independent reference: [n, L, C] logits -> [n, L] scores."""
  p = _softmax(logits.astype(np.float64))
  n, num_layers, c = p.shape
  if name == "entropy":
    return -(p * np.log(np.maximum(p, 1e-300))).sum(-1) / np.log(c)
  if name == "max_prob":
    return 1 - p.max(-1)
  if name == "topk_entropy":
    top = np.sort(p, -1)[..., ::-1][..., :top_k]
    top = top / top.sum(-1, keepdims=True)
    return -(top * np.log(np.maximum(top, 1e-300))).sum(-1) / np.log(top_k)
  labels = p.argmax(-1)
  agreements = np.zeros((n, num_layers))
  for l in range(1, num_layers):
    agreements[:, l] = np.where(labels[:, l] == labels[:, l - 1],
                                agreements[:, l - 1] + 1, 0)
  return 1 - agreements / (num_layers - 1)


def test_bad_criterion_is_rejected():
  with pytest.raises(ValueError, match="exit criterion"):
    criteria.ExitCriterion("confidence")
  with pytest.raises(ValueError, match="top_k"):
    criteria.ExitCriterion("topk_entropy", top_k=1)


def test_topk_entropy_does_not_saturate_with_many_classes():
  # 40 classes, one clearly ahead: plain entropy stays near 1, top-2 does not.
  logits = np.zeros([1, 1, 40], np.float32)
  logits[..., 0] = 3.0
  lp = tf.nn.log_softmax(logits)
  plain = criteria.ExitCriterion("entropy").scores(lp).numpy()
  top2 = criteria.ExitCriterion("topk_entropy", top_k=2).scores(lp).numpy()
  assert plain[0, 0] > 0.8 and top2[0, 0] < 0.5


@pytest.mark.parametrize("name", criteria.NAMES)
def test_scores_match_numpy_and_step_matches_scores(name):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(50, 4, 5)).astype(np.float32) * 3
  logits[:10] = logits[:10, :1]  # runs of agreeing layers for patience
  criterion = criteria.ExitCriterion(name, top_k=3)
  lp = tf.nn.log_softmax(logits)
  all_at_once = criterion.scores(lp).numpy()
  np.testing.assert_allclose(all_at_once,
                             numpy_scores(name, logits, top_k=3), atol=1e-5)
  state = criterion.initial_state(50)
  for l in range(4):
    step, state = criterion.step(lp[:, l], state, 4)
    np.testing.assert_allclose(step.numpy(), all_at_once[:, l], atol=1e-6)


@pytest.fixture(scope="module")
def model():
  return testing.tiny_model(seed=9, sharpen=6.0, dropout=0.0, num_layers=4)


@pytest.mark.parametrize("name", criteria.NAMES)
@pytest.mark.parametrize("speed", [0.0, 0.4, 0.7, 1.0])
def test_loop_follows_each_criterion(model, name, speed):
  criterion = criteria.ExitCriterion(name, top_k=2)
  table = flops_lib.flops_table(model.get_config(), 16)
  run = early_exit.compiled_early_exit(model, table, criterion)
  inputs = testing.random_inputs(40, 10, VOCAB, seed=4)
  got = run(inputs["token_ids"], inputs["segment_ids"],
            inputs["padding_mask"], tf.constant(speed))
  logits = model(inputs, training=False).numpy()
  scores = numpy_scores(name, logits, top_k=2)
  if name == "patience" and speed == 0:
    scores[:, -1] = 1.0  # students are skipped at speed 0: no agreements
  confident = scores < speed
  confident[:, -1] = True
  want = confident.argmax(1) + 1
  np.testing.assert_array_equal(got["exit_layer"].numpy(), want)
  rows = np.arange(40)
  np.testing.assert_allclose(got["uncertainty"].numpy(),
                             scores[rows, want - 1], atol=1e-5)
  np.testing.assert_allclose(got["probabilities"].numpy(),
                             _softmax(logits)[rows, want - 1], atol=1e-5)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
