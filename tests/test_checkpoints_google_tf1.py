"""Google TF1 reader: a name-based checkpoint written like Google's BERT."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import numpy_bert

ARCH = dict(vocabulary_size=len(testing.TINY_VOCAB), num_layers=2,
            hidden_dim=16, intermediate_dim=32, max_sequence_length=32,
            num_segments=2)


def google_tensors(params):
  """Encoder + pooler + MLM/NSP heads + Adam slots + global_step."""
  tensors = numpy_bert.to_names(params, numpy_bert.GOOGLE_NAMES, False)
  tensors["bert/pooler/dense/kernel"] = np.eye(16, dtype=np.float32)
  tensors["cls/predictions/output_bias"] = np.zeros(34, np.float32)
  tensors["cls/seq_relationship/output_weights"] = np.zeros((2, 16),
                                                            np.float32)
  tensors["bert/embeddings/word_embeddings/adam_m"] = np.zeros((34, 16),
                                                               np.float32)
  tensors["global_step"] = np.int64(1000)
  return tensors


def write_checkpoint(path, tensors):
  """bert_config.json + bert_model.ckpt.* (TF1 names) + vocab.txt."""
  os.makedirs(path, exist_ok=True)
  # A TF1 Saver in graph mode writes exactly these names; a TF2
  # tf.train.Checkpoint would write object-graph paths instead.
  with tf.Graph().as_default():
    variables = {name: tf.compat.v1.Variable(value, name=name.replace(
        "/", "_")) for name, value in tensors.items()}
    saver = tf.compat.v1.train.Saver(var_list=variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, os.path.join(path, "bert_model.ckpt"),
                 write_meta_graph=False)
  config = dict(vocab_size=ARCH["vocabulary_size"], num_hidden_layers=2,
                num_attention_heads=2, hidden_size=16, intermediate_size=32,
                max_position_embeddings=32, type_vocab_size=2,
                hidden_act="gelu")
  with open(os.path.join(path, "bert_config.json"), "w") as f:
    json.dump(config, f)
  with open(os.path.join(path, "vocab.txt"), "w") as f:
    f.write("\n".join(testing.TINY_VOCAB) + "\n")
  return str(path)


# The encoder's variable names in Google's BERT checkpoints, spelled out
# here from google-research/bert's modeling.py scopes, independently of
# both the reader's table (checkpoints/google_tf1.py) and the reference's
# (testing/numpy_bert.py), so that a typo shared by those two cannot pass.
GOOGLE_EMBEDDINGS = ("bert/embeddings/word_embeddings",
                     "bert/embeddings/position_embeddings",
                     "bert/embeddings/token_type_embeddings",
                     "bert/embeddings/LayerNorm/gamma",
                     "bert/embeddings/LayerNorm/beta")
GOOGLE_LAYER = tuple(
    f"{block}/{part}"
    for block, parts in (
        ("attention/self/query", ("kernel", "bias")),
        ("attention/self/key", ("kernel", "bias")),
        ("attention/self/value", ("kernel", "bias")),
        ("attention/output/dense", ("kernel", "bias")),
        ("attention/output/LayerNorm", ("gamma", "beta")),
        ("intermediate/dense", ("kernel", "bias")),
        ("output/dense", ("kernel", "bias")),
        ("output/LayerNorm", ("gamma", "beta")))
    for part in parts)


def test_reader_consumes_exactly_googles_encoder_names(tmp_path):
  tensors = google_tensors(numpy_bert.random_params(**ARCH))
  path = write_checkpoint(tmp_path, tensors)
  report = checkpoints.restore_backbone(
      FastBertBackbone(**checkpoints.read_info(path).architecture), path)
  want = set(GOOGLE_EMBEDDINGS) | {f"bert/encoder/layer_{i}/{name}"
                                   for i in range(2) for name in GOOGLE_LAYER}
  assert set(report.consumed) == want
  # Everything else in the file is reported, none of it silently dropped.
  assert set(report.unused) == set(tensors) - want


def test_matches_numpy_reference(tmp_path):
  params = numpy_bert.random_params(**ARCH, seed=7)
  path = write_checkpoint(tmp_path, google_tensors(params))
  assert checkpoints.detect_format(path) == "google_tf1"
  info = checkpoints.read_info(path)
  assert info.architecture == dict(ARCH, num_heads=2, layer_norm_epsilon=1e-12,
                                   activation="gelu")
  assert info.vocab_path == os.path.join(path, "vocab.txt") and info.lowercase
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  inputs = testing.random_inputs(3, 13, ARCH["vocabulary_size"], seed=8)
  ours = [h.numpy() for h in backbone(inputs)]
  reference = numpy_bert.forward(params, inputs["token_ids"],
                                 inputs["segment_ids"],
                                 inputs["padding_mask"], num_heads=2)
  diffs = numpy_bert.layer_diffs(ours, reference, inputs["padding_mask"])
  assert max(diffs) < 1e-5, diffs
  assert len(report.consumed) == 5 + 2 * 16
  assert report.unused["global_step"] == "training step counter"
  assert report.unused["bert/embeddings/word_embeddings/adam_m"] == (
      "Adam optimizer slot")


def test_extra_layer_is_unexpected(tmp_path):
  # A 3-layer checkpoint into a 2-layer backbone: layer 2 must not vanish.
  params = numpy_bert.random_params(**dict(ARCH, num_layers=3))
  path = write_checkpoint(tmp_path, google_tensors(params))
  backbone = FastBertBackbone(**checkpoints.read_info(path).architecture)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"unexpected.*bert/encoder/layer_2/"):
    checkpoints.restore_backbone(backbone, path)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
