"""Our own model directories (fastbert_tf.models.saving): backbone only.

Used to start a new FastBERT from a trained one's backbone (e.g. a
different task or number of classes); `models.saving.load_model` restores
a whole model, classifiers included.
"""

import os

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import files
from fastbert_tf.checkpoints import keras_hub_preset
from fastbert_tf.models import architecture as architecture_lib

FORMAT = "fastbert_tf"
NEEDS = ("config.json (a FastBertClassifier config), model.weights.h5, "
         "tokenizer.json and vocab.txt or sentencepiece.model")

# Same sublayer names as ours, one level down in the saved model.
MAP = {target: ("backbone/" + target, "same")
       for target in keras_hub_preset.MAP}

UNUSED = ((r"(student_classifier_\d+|teacher_classifier)/.*",
           "FastBERT classifier (models.saving.load_model restores it)"),)

_ARCHITECTURE = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                 "intermediate_dim", "max_sequence_length", "num_segments",
                 "layer_norm_epsilon", "activation")


def matches(path):
  if not (os.path.isdir(path) and
          all(files.optional_file(path, name) for name in (
              "config.json", "model.weights.h5", "tokenizer.json")) and
          files.optional_file(path, "vocab.txt", "sentencepiece.model")):
    return False
  config = files.read_json(os.path.join(path, "config.json"))
  return "num_layers" in architecture_lib.flatten(config)


def read_info(path):
  """config.json + tokenizer.json -> CheckpointInfo."""
  config_path = os.path.join(path, "config.json")
  config = architecture_lib.flatten(files.read_json(config_path))
  missing = [k for k in _ARCHITECTURE if k not in config]
  if missing:
    raise ValueError(f"{config_path}: fields {missing} are missing")
  architecture = {k: config[k] for k in _ARCHITECTURE}
  # Only non-default LayerNorm kinds are passed on, so that the dict stays
  # valid kwargs for models that predate the option.
  if config.get("layer_norm_type", "bert") != "bert":
    architecture["layer_norm_type"] = config["layer_norm_type"]
  from fastbert_tf.data import tokenizer as tokenizer_lib  # pylint: disable=g-import-not-at-top
  encoder = tokenizer_lib.load_encoder(path)
  sentencepiece = isinstance(encoder, tokenizer_lib.SentencePieceEncoder)
  return base.CheckpointInfo(
      FORMAT, architecture,
      None if sentencepiece else os.path.join(path, "vocab.txt"),
      encoder.lowercase, encoder.input_format,
      sentencepiece_model=encoder.model_proto if sentencepiece else None,
      text_prefix=getattr(encoder, "text_prefix", ""),
      kept_ids=encoder.kept_ids)


def load_tensors(path):
  """-> TensorSource over every weight of the saved model."""
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model, _ = saving.load_model(path)
  return base.TensorSource.from_keras_model(model)


def table(source):
  del source  # One naming variant only.
  return MAP, UNUSED, {}
