"""In-graph tokenization with tensorflow-text: raw text -> model inputs.

The public entry point of the tokenizers; each lives in its own module:
  `Encoder` (data.encoder): the interface, padding, truncation, framing,
    vocabulary pruning and the text rule (what an empty text is);
  `TextEncoder` (data.wordpiece_encoder): WordPiece over a BERT vocab.txt;
  `SentencePieceEncoder` (data.sentencepiece_encoder): a SentencePiece
    ModelProto (XLM-R / multilingual-e5).
Here: `load_encoder` (what `Encoder.save` wrote into a model directory) and
`export_text_rule` (the text rule of a loaded SavedModel).

Example:

>>> encoder = TextEncoder(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], 8)
>>> encoder(tf.constant(["a a"]))["token_ids"].numpy().tolist()
[[2, 4, 4, 3]]
"""

import json
import os

from absl import logging
import numpy as np
import tensorflow as tf

# Re-exported: callers import the tokenizers and their file names from here.
from fastbert_tf.data.encoder import Encoder  # pylint: disable=unused-import
from fastbert_tf.data.encoder import INPUT_FORMATS  # pylint: disable=unused-import
from fastbert_tf.data.encoder import KEPT_IDS_FILE
from fastbert_tf.data.encoder import SENTENCEPIECE_FILE  # pylint: disable=unused-import
from fastbert_tf.data.encoder import SPECIAL_TOKENS  # pylint: disable=unused-import
from fastbert_tf.data.encoder import TOKENIZER_FILE
from fastbert_tf.data.encoder import VOCAB_FILE  # pylint: disable=unused-import
from fastbert_tf.data.sentencepiece_encoder import SentencePieceEncoder
from fastbert_tf.data.wordpiece_encoder import read_vocab  # pylint: disable=unused-import
from fastbert_tf.data.wordpiece_encoder import TextEncoder


def export_text_rule(loaded, source):
  """The text rule of a loaded SavedModel: callable(list of n str) -> bool
  [n] from its `content_lengths` function (export/serving_module.py). Exports written
  before the rule have none: for them only blank texts can be told (a
  warning says so; re-export to refuse invisible-only text too)."""
  function = getattr(loaded, "content_lengths", None)
  if function is None:
    logging.warning("%s: this export predates the text rule (no "
                    "content_lengths function); only blank texts are "
                    "refused: re-export it", source)
    return lambda texts: np.array([not t.strip() for t in texts], bool)
  return lambda texts: function(tf.constant(
      list(texts), tf.string, shape=[len(texts)])).numpy() == 0


ENCODERS = {cls.TYPE: cls for cls in (TextEncoder, SentencePieceEncoder)}


def load_encoder(model_dir):
  """The encoder `Encoder.save` wrote into `model_dir`.

  Raises:
    ValueError: naming the file and field that is wrong.
  """
  path = os.path.join(model_dir, TOKENIZER_FILE)
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      settings = json.loads(f.read())
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid json ({e})") from None
  if not isinstance(settings, dict):
    raise ValueError(f"{path}: expected a json object")
  kind = settings.pop("type", TextEncoder.TYPE)  # older models: WordPiece
  if kind not in ENCODERS:
    raise ValueError(f"{path}: type {kind!r}, expected one of "
                     f"{sorted(ENCODERS)}")
  cls = ENCODERS[kind]
  kept_ids = None
  if settings.pop("pruned", False):
    with tf.io.gfile.GFile(os.path.join(model_dir, KEPT_IDS_FILE), "rb") as f:
      kept_ids = np.load(f)
  vocabulary = os.path.join(model_dir, cls.VOCABULARY_FILE)
  if cls is SentencePieceEncoder:
    with tf.io.gfile.GFile(vocabulary, "rb") as f:
      vocabulary = f.read()
  try:
    return cls(vocabulary, kept_ids=kept_ids, **settings)
  except TypeError as e:
    raise ValueError(f"{path}: unexpected settings ({e})") from None
