"""keras-hub preset reader: parity with keras-hub's own BertBackbone."""

import os
import sys

import keras
import keras_hub
import numpy as np
import pytest

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import numpy_bert

VOCAB = len(testing.TINY_VOCAB)


@pytest.fixture(name="preset")
def fixture_preset(tmp_path):
  """A random keras-hub BertBackbone and its tokenizer saved as a preset."""
  keras.utils.set_random_seed(11)
  model = keras_hub.models.BertBackbone(
      vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
      intermediate_dim=32, max_sequence_length=32)
  # Random LayerNorm and bias values too, so that no weight can be dropped
  # or swapped unnoticed (they start as ones and zeros).
  rng = np.random.default_rng(0)
  for w in model.weights:
    w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype(np.float32))
  model.save_to_preset(str(tmp_path))
  keras_hub.models.BertTokenizer(vocabulary=testing.TINY_VOCAB,
                                 lowercase=True).save_to_preset(str(tmp_path))
  return str(tmp_path), model


def test_read_info(preset):
  path, _ = preset
  assert checkpoints.detect_format(path) == "keras_hub"
  info = checkpoints.read_info(path)
  assert info.architecture == dict(
      vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
      intermediate_dim=32, max_sequence_length=32, num_segments=2,
      layer_norm_epsilon=1e-12, activation="gelu_approximate")
  assert info.vocab_path == os.path.join(path, "assets", "tokenizer",
                                         "vocabulary.txt")
  assert info.lowercase is True


def test_matches_keras_hub_and_numpy_reference(preset):
  path, model = preset
  backbone = FastBertBackbone(**checkpoints.read_info(path).architecture,
                          dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  assert set(report.unused) == {"pooled_dense/kernel", "pooled_dense/bias"}
  inputs = testing.random_inputs(3, 10, VOCAB, seed=12)
  ours = [h.numpy() for h in backbone(inputs)]
  theirs = model(inputs, training=False)["sequence_output"].numpy()
  real = inputs["padding_mask"].astype(bool)
  assert np.max(np.abs(ours[-1] - theirs)[real]) < 1e-5
  weights = {w.path: w.numpy() for w in model.weights}
  reference = numpy_bert.forward(
      numpy_bert.from_keras_hub(weights, 2), inputs["token_ids"],
      inputs["segment_ids"], inputs["padding_mask"], num_heads=2,
      activation="gelu_approximate")
  diffs = numpy_bert.layer_diffs(ours, reference, inputs["padding_mask"])
  assert max(diffs) < 1e-5, diffs


def test_backbone_with_exact_gelu_is_refused(preset):
  path, _ = preset
  architecture = dict(checkpoints.read_info(path).architecture,
                      activation="gelu")
  with pytest.raises(checkpoints.CheckpointMismatchError, match="activation"):
    checkpoints.restore_backbone(FastBertBackbone(**architecture), path)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
