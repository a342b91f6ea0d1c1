"""Tiny saved models on disk for the Predictor, predict CLI and Beam tests."""

import json
import os

from fastbert_tf import testing

# Texts over the tiny vocabulary; with seed 7 and sharpened heads a speed of
# 0.3 sends them out at different layers.
TEXTS = ("a b z", "c", "z z z d e", "好 书", "q r s t u v w x y", "m n",
         "z", "b c d e f g", "差", "k l z z")


def save_tiny_model(model_dir, names=None, text_pair=False, seed=7,
                    max_seq_length=16):
  """Writes a seeded tiny model directory (3 classes, 3 layers).

  Args:
    model_dir: str, created if missing.
    names: optional 3 label names, written to labels.json.
    text_pair: bool, a sentence-pair model.
    seed: int, weight seed.
    max_seq_length: int.

  Returns:
    (FastBertClassifier, TextEncoder) as saved.
  """
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model = testing.tiny_model(seed=seed, sharpen=8.0, dropout=0.0)
  encoder = TextEncoder(testing.TINY_VOCAB, max_seq_length,
                        text_pair=text_pair)
  saving.save_model(model, encoder, model_dir)
  if names is not None:
    with open(os.path.join(model_dir, "labels.json"), "w",
              encoding="utf-8") as f:
      json.dump(dict(num_classes=len(names), names=list(names)), f,
                ensure_ascii=False)
  return model, encoder
