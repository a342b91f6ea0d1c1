"""Tests for fastbert_tf.layers.student_classifier."""

import sys

import keras
import numpy as np
import pytest

from fastbert_tf.layers.student_classifier import StudentClassifier
from fastbert_tf.testing import layer_tests


def _inputs(seed=0, batch=4, seq=6, width=12):
  rng = np.random.default_rng(seed)
  hidden = rng.normal(size=(batch, seq, width)).astype("float32")
  mask = np.ones((batch, seq), "int32")
  mask[1, 3:] = 0
  mask[2, 5:] = 0
  return hidden, mask


def test_shapes_and_paper_structure():
  layer = StudentClassifier(num_classes=5, hidden_dim=8, num_heads=2)
  hidden, mask = _inputs()
  assert layer(hidden, mask).shape == (4, 5)
  assert layer.input_dense.units == 8
  assert layer.attention.num_heads == 2
  assert layer.pooled_dense.units == 8 and layer.logits_dense.units == 5


def test_first_pooling_equals_full_self_attention_at_cls():
  # The layer only queries with [CLS]; that must equal full self-attention
  # followed by taking position 0, as in the authors' classifier.
  keras.utils.set_random_seed(1)
  layer = StudentClassifier(num_classes=3, hidden_dim=8, num_heads=2, dropout=0)
  hidden, mask = _inputs()
  got = layer(hidden, mask).numpy()
  x = layer.input_dense(hidden)
  attention_mask = np.broadcast_to(mask[:, None, :].astype(bool), (4, 6, 6))
  full = layer.attention(query=x, value=x, key=x, attention_mask=attention_mask)
  want = layer.logits_dense(layer.pooled_dense(full[:, 0])).numpy()
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("pooling", ["first", "mean", "max"])
def test_padding_values_are_ignored(pooling):
  layer = StudentClassifier(num_classes=3, hidden_dim=8, num_heads=2,
                            pooling=pooling, dropout=0)
  hidden, mask = _inputs()
  noisy = hidden.copy()
  noisy[mask == 0] = 100.0
  np.testing.assert_allclose(layer(hidden, mask).numpy(),
                             layer(noisy, mask).numpy(), atol=1e-5)


def test_mean_and_max_pooling_differ_from_first():
  keras.utils.set_random_seed(2)
  hidden, mask = _inputs()
  outs = {}
  for pooling in ("first", "mean", "max"):
    keras.utils.set_random_seed(2)
    outs[pooling] = StudentClassifier(3, 8, 2, pooling=pooling)(hidden, mask)
  assert not np.allclose(outs["first"], outs["mean"])
  assert not np.allclose(outs["mean"], outs["max"])


def test_config_round_trip_and_bad_arguments():
  layer = StudentClassifier(num_classes=4, hidden_dim=16, num_heads=4,
                            pooling="max", dropout=0.2)
  clone = StudentClassifier.from_config(layer.get_config())
  assert (clone.num_classes, clone.hidden_dim, clone.num_heads, clone.pooling,
          clone.dropout) == (4, 16, 4, "max", 0.2)
  with pytest.raises(ValueError, match="pooling"):
    StudentClassifier(2, pooling="last-ish")
  with pytest.raises(ValueError, match="divisible"):
    StudentClassifier(2, hidden_dim=10, num_heads=3)


@pytest.mark.parametrize("pooling", ["first", "max"])
def test_layer_harness(pooling):
  hidden, mask = _inputs()
  layer_tests.run_layer_test(
      StudentClassifier,
      dict(num_classes=5, hidden_dim=8, num_heads=2, pooling=pooling),
      dict(hidden=hidden, padding_mask=mask), expected_output_shape=(4, 5),
      # input_dense 2, attention Q/K/V/O 8, pooled_dense 2, logits_dense 2
      expected_num_trainable_weights=14,
      # Logits stay float32 under any policy.
      float32_outputs=True, float32_sublayers=("logits_dense",))


def test_keras_saving(tmp_path):
  hidden, mask = _inputs()
  layer_tests.run_model_saving_test(
      StudentClassifier, dict(num_classes=3, hidden_dim=8, num_heads=2,
                              pooling="mean"),
      dict(hidden=hidden, padding_mask=mask), path=str(tmp_path))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
