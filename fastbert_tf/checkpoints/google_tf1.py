"""Google BERT TF1 checkpoints: bert_config.json + bert_model.ckpt.* + vocab.

Name-based TF1 checkpoints (`bert/encoder/layer_3/attention/self/query/
kernel`), read with `tf.train.load_checkpoint`. TF kernels are already
[in, out]; only the attention kernels are reshaped to per-head form.
"""

import os

import tensorflow as tf

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import files

FORMAT = "google_tf1"
NEEDS = ("bert_config.json and a TF1 checkpoint (bert_model.ckpt.index + "
         ".data-*, or one named by a 'checkpoint' file); vocab.txt optional")

_LAYER = "bert/encoder/layer_{i}/"
MAP = {
    "embeddings/token_embedding/embeddings":
        ("bert/embeddings/word_embeddings", "same"),
    "embeddings/position_embedding/embeddings":
        ("bert/embeddings/position_embeddings", "same"),
    "embeddings/segment_embedding/embeddings":
        ("bert/embeddings/token_type_embeddings", "same"),
    "embeddings/embeddings_layer_norm/gamma":
        ("bert/embeddings/LayerNorm/gamma", "same"),
    "embeddings/embeddings_layer_norm/beta":
        ("bert/embeddings/LayerNorm/beta", "same"),
    "transformer_layer_{i}/self_attention_layer/query/kernel":
        (_LAYER + "attention/self/query/kernel", "kernel"),
    "transformer_layer_{i}/self_attention_layer/query/bias":
        (_LAYER + "attention/self/query/bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/key/kernel":
        (_LAYER + "attention/self/key/kernel", "kernel"),
    "transformer_layer_{i}/self_attention_layer/key/bias":
        (_LAYER + "attention/self/key/bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/value/kernel":
        (_LAYER + "attention/self/value/kernel", "kernel"),
    "transformer_layer_{i}/self_attention_layer/value/bias":
        (_LAYER + "attention/self/value/bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/attention_output/kernel":
        (_LAYER + "attention/output/dense/kernel", "out_kernel"),
    "transformer_layer_{i}/self_attention_layer/attention_output/bias":
        (_LAYER + "attention/output/dense/bias", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/gamma":
        (_LAYER + "attention/output/LayerNorm/gamma", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/beta":
        (_LAYER + "attention/output/LayerNorm/beta", "same"),
    "transformer_layer_{i}/feedforward_intermediate_dense/kernel":
        (_LAYER + "intermediate/dense/kernel", "kernel"),
    "transformer_layer_{i}/feedforward_intermediate_dense/bias":
        (_LAYER + "intermediate/dense/bias", "same"),
    "transformer_layer_{i}/feedforward_output_dense/kernel":
        (_LAYER + "output/dense/kernel", "kernel"),
    "transformer_layer_{i}/feedforward_output_dense/bias":
        (_LAYER + "output/dense/bias", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/gamma":
        (_LAYER + "output/LayerNorm/gamma", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/beta":
        (_LAYER + "output/LayerNorm/beta", "same"),
}

UNUSED = (
    (r"bert/pooler/.*", "pooler (FastBERT classifies hidden states)"),
    (r"cls/predictions/.*", "masked-LM head"),
    (r"cls/seq_relationship/.*", "next-sentence head"),
    (r"output_(weights|bias)", "run_classifier.py task head"),
    (r".*/adam_[mv]", "Adam optimizer slot"),
    (r"global_step", "training step counter"),
    (r"_CHECKPOINTABLE_OBJECT_GRAPH", "object-graph metadata"),
)

# Google's released checkpoints were trained with the erf GELU (the tanh form
# arrived in modeling.py later); transformers maps their "gelu" to erf too.
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu"}


def matches(path):
  return (os.path.isdir(path) and
          files.optional_file(path, "bert_config.json") is not None and
          _checkpoint_prefix(path) is not None)


def read_info(path):
  """bert_config.json -> CheckpointInfo (Google's files say nothing about
  casing: lowercase defaults to True)."""
  config_path = os.path.join(path, "bert_config.json")
  config = files.read_json(config_path)
  # modeling.py hard-codes LayerNorm epsilon 1e-12.
  architecture = files.bert_config_architecture(
      config, config_path, _ACTIVATIONS, default_segments=16,
      layer_norm_epsilon=1e-12)
  return base.CheckpointInfo(FORMAT, architecture,
                             files.optional_file(path, "vocab.txt"), True)


def load_tensors(path):
  """-> TensorSource over the checkpoint, read lazily by name."""
  prefix = _checkpoint_prefix(path)
  reader = tf.train.load_checkpoint(prefix)
  shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
  return base.TensorSource(shapes, reader.get_tensor)


def table(source):
  del source  # One naming variant only.
  return MAP, UNUSED, {}


def _checkpoint_prefix(path):
  """bert_model.ckpt if present, else the latest checkpoint, else None."""
  if os.path.isfile(os.path.join(path, "bert_model.ckpt.index")):
    return os.path.join(path, "bert_model.ckpt")
  return tf.train.latest_checkpoint(path)
