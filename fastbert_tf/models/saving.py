"""A saved model is a directory: config.json + model.weights.h5 + the
tokenizer (tokenizer.json with vocab.txt or sentencepiece.model).

config.json holds exactly the FastBertClassifier constructor kwargs, so it
doubles as a `--config_json` for new runs; tokenizer.json holds the
encoder's settings (data.tokenizer.Encoder.save).
"""

import json
import os

import tensorflow as tf

from fastbert_tf.data import tokenizer as tokenizer_lib
from fastbert_tf.models.fastbert_classifier import FastBertClassifier

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
VOCAB_FILE = tokenizer_lib.VOCAB_FILE
TOKENIZER_FILE = tokenizer_lib.TOKENIZER_FILE


def save_model(model, encoder, model_dir):
  """Writes the model and its tokenizer settings into `model_dir`.

  Args:
    model: a built FastBertClassifier.
    encoder: the data.tokenizer.Encoder it was trained with.
    model_dir: str, created if missing.
  """
  tf.io.gfile.makedirs(model_dir)
  config = {k: v for k, v in model.get_config().items()
            if k not in ("name", "trainable", "dtype")}
  # The policy by name ("mixed_bfloat16"), so config.json stays plain kwargs.
  config["dtype"] = model.dtype_policy.name
  _write_json(os.path.join(model_dir, CONFIG_FILE), config)
  encoder.save(model_dir)
  model.save_weights(os.path.join(model_dir, WEIGHTS_FILE))


def load_model(model_dir, dtype=None):
  """Loads what `save_model` wrote.

  Args:
    model_dir: str.
    dtype: optional Keras dtype policy name to run the model in instead of
      the one it was saved with (e.g. "float32" for a mixed_float16 model on
      a CPU); the weights are float32 either way.

  Returns:
    (FastBertClassifier, data.tokenizer.Encoder).
  """
  for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
    path = os.path.join(model_dir, name)
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f"{path}: missing; is {model_dir} a model "
                              "directory written by fastbert_tf?")
  config = _read_json(os.path.join(model_dir, CONFIG_FILE))
  if dtype:
    config["dtype"] = dtype
  model = FastBertClassifier(**config)
  model.build()
  model.load_weights(os.path.join(model_dir, WEIGHTS_FILE))
  return model, tokenizer_lib.load_encoder(model_dir)


def _write_json(path, obj):
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _read_json(path):
  with tf.io.gfile.GFile(path, "r") as f:
    return json.loads(f.read())
