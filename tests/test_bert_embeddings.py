"""Tests for fastbert_tf.layers.bert_embeddings: the embeddings block and
UER's LayerNorm, through the shared layer harness."""

import sys

import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.layers.bert_embeddings import BertEmbeddings
from fastbert_tf.layers.bert_embeddings import UerLayerNormalization
from fastbert_tf.testing import layer_tests

VOCAB = len(testing.TINY_VOCAB)


def _ids():
  inputs = testing.random_inputs(3, 7, VOCAB, seed=2)
  return dict(token_ids=inputs["token_ids"], segment_ids=inputs["segment_ids"])


@pytest.mark.parametrize("layer_norm_type", ["bert", "uer"])
def test_layer_harness(layer_norm_type):
  layer_tests.run_layer_test(
      BertEmbeddings,
      dict(vocabulary_size=VOCAB, hidden_dim=16, max_sequence_length=32,
           dropout=0.1, layer_norm_type=layer_norm_type),
      _ids(), expected_output_shape=(3, 7, 16),
      # token, position and segment tables, LayerNorm gamma and beta
      expected_num_trainable_weights=5)


def test_keras_saving(tmp_path):
  layer_tests.run_model_saving_test(
      BertEmbeddings,
      dict(vocabulary_size=VOCAB, hidden_dim=16, max_sequence_length=32,
           num_segments=3, layer_norm_type="uer"),
      _ids(), path=str(tmp_path))


def test_uer_layer_norm_harness_and_saving(tmp_path):
  x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
  layer_tests.run_layer_test(UerLayerNormalization, dict(epsilon=1e-6), x,
                             expected_output_shape=(2, 5, 8),
                             expected_num_trainable_weights=2)
  layer_tests.run_model_saving_test(UerLayerNormalization, dict(epsilon=1e-3),
                                    x, path=str(tmp_path))


def test_uer_layer_norm_is_uers_formula():
  x = np.random.default_rng(1).normal(2.0, 3.0, size=(4, 6)).astype("float32")
  got = UerLayerNormalization(epsilon=1e-6)(x).numpy()
  want = (x - x.mean(-1, keepdims=True)) / (
      x.std(-1, ddof=1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(got, want, atol=1e-5)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
