"""Tests for fastbert_tf.layers.transformer_encoder: keras-hub's arithmetic,
the LayerNorm hook, and the UER variant."""

import sys

import keras
import keras_hub
import numpy as np
import pytest

from fastbert_tf.layers.bert_embeddings import UerLayerNormalization
from fastbert_tf.layers.transformer_encoder import TransformerEncoder
from fastbert_tf.layers.transformer_encoder import UerTransformerEncoder
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import layer_tests

KWARGS = dict(intermediate_dim=32, num_heads=2, dropout=0.0,
              layer_norm_epsilon=1e-6)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  hidden = rng.normal(size=(3, 6, 16)).astype("float32")
  mask = np.ones((3, 6), "int32")
  mask[1, 4:] = 0
  mask[2, 2:] = 0
  return dict(inputs=hidden, padding_mask=mask)


@pytest.mark.parametrize("cls", [TransformerEncoder, UerTransformerEncoder])
def test_layer_harness(cls):
  layer_tests.run_layer_test(
      cls, KWARGS, _inputs(), expected_output_shape=(3, 6, 16),
      # Q/K/V/O kernels and biases, 2 LayerNorms, 2 FFN denses.
      expected_num_trainable_weights=16)


def _copy_weights(source, target):
  by_path = {v.path.split("/", 1)[1]: v for v in source.weights}
  for v in target.weights:
    v.assign(by_path[v.path.split("/", 1)[1]])


def test_bert_block_equals_keras_hubs():
  data = _inputs(1)
  ours = TransformerEncoder(**KWARGS, activation="gelu", name="block")
  theirs = keras_hub.layers.TransformerEncoder(**KWARGS, activation="gelu",
                                               name="block")
  ours(**data)
  theirs(**data)
  _copy_weights(theirs, ours)
  np.testing.assert_allclose(ours(**data), theirs(**data), atol=1e-5)


def _numpy_uer_norm(x, gamma, beta, epsilon):
  mean = x.mean(-1, keepdims=True)
  std = x.std(-1, ddof=1, keepdims=True)
  return gamma * (x - mean) / (std + epsilon) + beta


def test_uer_block_normalizes_the_uer_way():
  # Same weights in both blocks: only the normalization differs, so the UER
  # block equals the BERT block with each LayerNorm replaced by UER's
  # formula (computed here in numpy from the BERT block's pieces).
  data = _inputs(2)
  bert = TransformerEncoder(**KWARGS, name="block")
  uer = UerTransformerEncoder(**KWARGS, name="block")
  bert(**data)
  uer(**data)
  _copy_weights(bert, uer)
  x, mask = data["inputs"], data["padding_mask"]
  attention = bert._self_attention_layer(  # pylint: disable=protected-access
      query=x, value=x, attention_mask=mask[:, None, :])
  norm = uer._self_attention_layer_norm  # pylint: disable=protected-access
  h = _numpy_uer_norm(np.asarray(attention) + x, np.asarray(norm.gamma),
                      np.asarray(norm.beta), 1e-6)
  ffn = bert._feedforward_output_dense(  # pylint: disable=protected-access
      bert._feedforward_intermediate_dense(h))  # pylint: disable=protected-access
  norm = uer._feedforward_layer_norm  # pylint: disable=protected-access
  want = _numpy_uer_norm(np.asarray(ffn) + h, np.asarray(norm.gamma),
                         np.asarray(norm.beta), 1e-6)
  np.testing.assert_allclose(uer(**data), want, atol=1e-4)
  assert np.abs(np.asarray(bert(**data)) - want).max() > 1e-3


class _ScaledNorm(keras.layers.Layer):
  """A stand-in normalization: x * 2."""

  def call(self, x):
    return x * 2.0


class _HookedEncoder(TransformerEncoder):

  def make_layer_norm(self, name):
    return _ScaledNorm(name=name)


def test_make_layer_norm_is_the_hook_build_uses():
  # A subclass that overrides only the hook gets its layer in both places,
  # under the stable names.
  layer = _HookedEncoder(**KWARGS)
  layer(**_inputs())
  norms = [l for l in layer._flatten_layers() if isinstance(l, _ScaledNorm)]  # pylint: disable=protected-access
  assert sorted(n.name for n in norms) == ["feedforward_layer_norm",
                                           "self_attention_layer_norm"]


@pytest.mark.parametrize("layer_norm_type,norm_class", [
    ("bert", keras.layers.LayerNormalization),
    ("uer", UerLayerNormalization)])
def test_backbone_installs_the_variant_everywhere(layer_norm_type,
                                                  norm_class):
  backbone = FastBertBackbone(34, 2, 2, 16, 32,
                              layer_norm_type=layer_norm_type)
  backbone.build((None, None))
  norms = [l for l in backbone._flatten_layers()  # pylint: disable=protected-access
           if "layer_norm" in l.name]
  # The embeddings' one and two per transformer layer.
  assert len(norms) == 5
  assert all(type(n) is norm_class for n in norms), norms


def test_unknown_layer_norm_type_is_refused():
  with pytest.raises(ValueError, match="rms"):
    FastBertBackbone(34, 2, 2, 16, 32, layer_norm_type="rms")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
