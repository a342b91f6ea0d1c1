"""Per-sample uncertainty scores that decide whether a sample exits."""

import math

import tensorflow as tf


def normalized_entropy(log_probs):
  """FastBERT's uncertainty: -sum p log p / log N, in [0, 1].

  Computed from log-probabilities so that p = 0 contributes exactly 0 (the
  product exp(log p) * log p is 0 * finite, never 0 * -inf = NaN, because
  log_softmax never returns -inf for finite logits).

  Args:
    log_probs: float32 [batch, num_classes], e.g. tf.nn.log_softmax(logits).

  Returns:
    float32 [batch]: 0 for a one-hot distribution, 1 for uniform.
  """
  num_classes = log_probs.shape[-1]
  if num_classes is None or num_classes < 2:
    raise ValueError(f"need a static num_classes >= 2, got {num_classes}")
  entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
  return tf.clip_by_value(entropy / math.log(num_classes), 0.0, 1.0)
