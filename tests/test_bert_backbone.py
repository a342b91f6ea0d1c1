"""Tests for fastbert_tf.models.bert_backbone through the shared layer
harness: config, serialization, dtype policies, `.keras` saving."""

import math
import sys

import keras
import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.models import bert_backbone
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import layer_tests

VOCAB = len(testing.TINY_VOCAB)
ARCH = dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=32)


@pytest.mark.parametrize("overrides", [
    {}, dict(layer_norm_type="uer", activation="gelu_approximate")],
                         ids=["bert", "uer-gelu_approximate"])
def test_layer_harness(overrides):
  layer_tests.run_layer_test(
      FastBertBackbone, dict(ARCH, **overrides),
      testing.random_inputs(3, 7, VOCAB, seed=1),
      expected_output_shape=[(3, 7, 16)] * 2,
      # embeddings 5, each transformer layer 16 (Q/K/V/O kernels and
      # biases, 2 LayerNorms, 2 FFN denses)
      expected_num_trainable_weights=5 + 2 * 16)


@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate"])
def test_keras_saving_keeps_the_activation(activation, tmp_path):
  restored = layer_tests.run_model_saving_test(
      FastBertBackbone, dict(ARCH, activation=activation, dropout=0.0),
      testing.random_inputs(3, 7, VOCAB, seed=2), path=str(tmp_path))
  backbone = [l for l in restored.layers if isinstance(l, FastBertBackbone)][0]
  x = np.linspace(-3, 3, 13).astype("float32")
  want = keras.activations.gelu(x, approximate=activation != "gelu")
  for layer in backbone.transformer_layers:
    np.testing.assert_allclose(layer.activation(x), want, atol=1e-6)


def test_activations_are_the_named_gelus():
  # Exact (erf) GELU for "gelu", as Google/HF BERT; tanh form otherwise.
  x = np.array([-2.0, -0.5, 0.3, 1.7], "float32")
  exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))
  np.testing.assert_allclose(bert_backbone._activation("gelu")(x), exact,  # pylint: disable=protected-access
                             atol=1e-6)
  tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
  np.testing.assert_allclose(bert_backbone.gelu_approximate(x), tanh,
                             atol=1e-6)
  # By its registered name, not as bytecode.
  assert keras.activations.serialize(bert_backbone.gelu_approximate)[
      "config"] == "fastbert_tf>gelu_approximate"


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
