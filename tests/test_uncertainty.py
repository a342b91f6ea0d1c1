"""Tests for fastbert_tf.inference.uncertainty."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf.inference import uncertainty


def _score(logits):
  log_probs = tf.nn.log_softmax(tf.constant(logits, tf.float32))
  return uncertainty.normalized_entropy(log_probs).numpy()


def test_uniform_is_one_for_any_class_count():
  for n in (2, 3, 40):
    np.testing.assert_allclose(_score(np.zeros([1, n])), [1.0], atol=1e-6)


def test_one_hot_is_zero_without_nan():
  # exp(-2000) underflows to p = 0 exactly: the p log p term must be 0, not NaN.
  scores = _score([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
  assert not np.isnan(scores).any()
  np.testing.assert_allclose(scores, [0.0, 0.0], atol=1e-6)


def test_matches_numpy_formula():
  logits = np.array([[2.0, 1.0, 0.1], [0.3, -0.2, 0.9]])
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  expected = -(p * np.log(p)).sum(-1) / np.log(3)
  np.testing.assert_allclose(_score(logits), expected, rtol=1e-5)


def test_confident_is_lower_than_unsure():
  low, high = _score([[5.0, 0.0], [0.1, 0.0]])
  assert low < high


def test_rejects_single_class():
  with pytest.raises(ValueError, match="num_classes"):
    uncertainty.normalized_entropy(tf.zeros([2, 1]))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
