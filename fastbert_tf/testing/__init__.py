"""Shared test harness: tiny configs, deterministic inputs, generated data."""

import os

import numpy as np

from fastbert_tf.models import presets
from fastbert_tf.models.fastbert_classifier import FastBertClassifier

# ~30 tokens: the special tokens plus single letters (and a few CJK chars),
# enough for the tokenizer and the CLI smoke test.
TINY_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
              list("abcdefghijklmnopqrstuvwxyz") + ["好", "书", "差"])


def python_m(module, kill_at=None):
  """The argv that runs `python -m module`, or, with kill_at ("PHASE:STEP"),
  the same module under fastbert_tf.testing.kill_run, which kill -9s it
  right after that checkpoint."""
  import sys  # pylint: disable=g-import-not-at-top
  if kill_at:
    return [sys.executable, "-m", "fastbert_tf.testing.kill_run", kill_at,
            module]
  return [sys.executable, "-m", module]


def tiny_config(**overrides):
  """test_tiny preset kwargs with a vocabulary and classes filled in."""
  config = presets.get_preset("test_tiny")
  config.update(vocabulary_size=len(TINY_VOCAB), num_classes=3, dropout=0.1)
  config.update(overrides)
  return config


def tiny_model(seed=0, sharpen=1.0, **overrides):
  """A built FastBertClassifier with seeded weights.

  Args:
    seed: int, weight seed.
    sharpen: multiply every classifier's last kernel by this, so that a
      random model is confident on some samples and not others (random
      heads are near-uniform, which would make every exit test trivial).
  """
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  model = FastBertClassifier.from_architecture(**tiny_config(**overrides))
  model.build()
  if sharpen != 1.0:
    for classifier in model.classifiers:
      kernel = classifier.logits_dense.kernel
      kernel.assign(kernel * sharpen)
  return model


def random_inputs(batch, seq, vocabulary_size, seed=0, min_length=2):
  """Random int32 model inputs with per-sample lengths and zero padding.

  Returns:
    dict of int32 numpy [batch, seq] token_ids, segment_ids, padding_mask.
  """
  rng = np.random.default_rng(seed)
  lengths = rng.integers(min_length, seq + 1, size=batch)
  lengths[0] = seq  # at least one full row, so seq is the batch width
  mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
  ids = rng.integers(5, vocabulary_size, size=(batch, seq)).astype(np.int32)
  ids[:, 0] = 2
  segments = ((np.arange(seq)[None, :] >= lengths[:, None] // 2) &
              (mask > 0)).astype(np.int32)
  return dict(token_ids=ids * mask, segment_ids=segments, padding_mask=mask)


def write_tsv(path, rows, header=("label", "text_a")):
  """Writes rows (tuples of str/int) as a TSV with a header line."""
  with open(path, "w", encoding="utf-8") as f:
    f.write("\t".join(header) + "\n")
    for row in rows:
      f.write("\t".join(str(x) for x in row) + "\n")


def letter_task(n, seed=0):
  """A learnable 2-class task over the tiny vocab: label 1 iff the text
  contains the letter "z". Returns a list of (label, text) rows."""
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(n):
    letters = list(rng.choice(list("abcdefghijklmnopqrstuvwxy"),
                              size=rng.integers(3, 10)))
    label = i % 2
    if label:
      letters[rng.integers(len(letters))] = "z"
    rows.append((label, " ".join(letters)))
  return rows


def write_letter_task(directory, **sizes):
  """`<directory>/<split>.tsv` of the letter task for each split=size given
  (train seed 0, dev 1, test 2), e.g. write_letter_task(d, train=48,
  dev=16, test=16). Returns directory."""
  seeds = {"train": 0, "dev": 1, "test": 2}
  for split, n in sizes.items():
    write_tsv(os.path.join(directory, f"{split}.tsv"),
              letter_task(n, seeds[split]))
  return directory
