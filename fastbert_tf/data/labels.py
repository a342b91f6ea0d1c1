"""The label set of a task: explicit, checked against every split, saved.

`--labels=neg,pos` (names; their order gives the ids) or `--num_classes=K`
fix the set; without either it is inferred from the training split, but
only when train holds exactly the ids 0..K-1 (a typo such as one `5` in a
binary set would otherwise train a 6-class model). Every split's labels must
be in the set, dev/test may not hold a class train lacks, there must be at
least two classes, and all splits must agree on single texts vs pairs.
Errors name the file and line.
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging

from fastbert_tf.data.rows import DataError

LABELS_FILE = "labels.json"
# More than this many classes needs --num_classes or --labels: an id such
# as 100000 is far more likely a typo than a 100,001-class task.
MAX_INFERRED_CLASSES = 1000


@dataclasses.dataclass(frozen=True)
class LabelSet:
  """The classes a model predicts.

  Attributes:
    num_classes: int >= 2.
    names: tuple of num_classes str (names[i] is class i), or None when only
      ids are known.
  """
  num_classes: int
  names: tuple | None = None

  def __post_init__(self):
    if self.num_classes < 2:
      raise DataError(f"a classifier needs at least 2 classes, got "
                      f"{self.num_classes}")
    if self.names is not None:
      object.__setattr__(self, "names", tuple(str(n) for n in self.names))
      if len(self.names) != self.num_classes:
        raise DataError(f"{len(self.names)} label names for "
                        f"{self.num_classes} classes")
      if len(set(self.names)) != len(self.names):
        raise DataError(f"label names repeat: {list(self.names)}")

  def name(self, label):
    """The name of class `label`, or its id as a string."""
    return self.names[label] if self.names else str(label)

  def to_json(self):
    return dict(num_classes=self.num_classes,
                names=list(self.names) if self.names else None)

  def save(self, directory):
    with open(os.path.join(directory, LABELS_FILE), "w",
              encoding="utf-8") as f:
      f.write(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")

  @classmethod
  def load(cls, directory, num_classes=None):
    """labels.json of a model directory; models saved before it existed
    get ids only (num_classes from their config)."""
    path = os.path.join(directory, LABELS_FILE)
    if not os.path.exists(path):
      return cls(num_classes) if num_classes else None
    try:
      with open(path, encoding="utf-8") as f:
        data = json.load(f)
      return cls(int(data["num_classes"]), data.get("names"))
    except (ValueError, KeyError, TypeError) as e:
      raise DataError(f"{path}: not a labels file ({e}); expected "
                      '{"num_classes": K, "names": [...] or null}') from None


def resolve(splits, names=None, num_classes=0):
  """The LabelSet of a task, after checking every split against it.

  Args:
    splits: {"train": TextDataset, "dev": ..., "test": ...}, labelled.
    names: optional sequence of str (`--labels`).
    num_classes: int, `--num_classes` (0 = not given).

  Returns:
    LabelSet, logged.

  Raises:
    DataError: naming the file and line of the first offending label, the
      classes missing from train, fewer than 2 classes, or a split of
      pairs among single texts (or the reverse).
  """
  train = splits["train"]
  _check_pairs(splits)
  names = tuple(n.strip() for n in names) if names else None
  if names and num_classes and num_classes != len(names):
    raise DataError(f"--num_classes={num_classes} but --labels names "
                    f"{len(names)} classes")
  if names:
    label_set = LabelSet(len(names), names)
  elif num_classes:
    label_set = LabelSet(num_classes)
  else:
    label_set = _infer(train)
  for split, data in splits.items():
    _check_in_range(data, label_set.num_classes, split)
  present = set(np.unique(train.labels).tolist())
  for split in ("dev", "test"):
    data = splits.get(split)
    if data is None:
      continue
    for i, label in enumerate(data.labels):
      if int(label) not in present:
        raise DataError(
            f"{data.where(i)}: class {int(label)} ({label_set.name(label)}) "
            f"never occurs in the training split {train.source}; the model "
            "could not learn it")
  counts = np.bincount(train.labels, minlength=label_set.num_classes)
  logging.info("Labels: %d classes%s; training examples per class: %s",
               label_set.num_classes,
               f" {list(label_set.names)}" if label_set.names else "",
               counts.tolist())
  return label_set


def _infer(train):
  labels = np.asarray(train.labels)
  if not labels.size:
    raise DataError(f"{train.source}: no labels to infer the classes from")
  top = int(labels.max())
  if top + 1 > MAX_INFERRED_CLASSES:
    raise DataError(
        f"{train.where(int(np.argmax(labels)))}: label {top} would make a "
        f"{top + 1}-class model; pass --num_classes or --labels if that is "
        "really meant")
  missing = sorted(set(range(top + 1)) - set(np.unique(labels).tolist()))
  if missing:
    raise DataError(
        f"{train.where(int(np.argmax(labels)))}: label {top} implies classes "
        f"0..{top}, but {_few(missing)} never occur in {train.source}; fix "
        "the label, or pass --num_classes / --labels if the set is right")
  if top < 1:
    raise DataError(f"{train.source}: every label is {top}; a classifier "
                    "needs at least 2 classes")
  return LabelSet(top + 1)


def _check_in_range(data, num_classes, split):
  bad = np.flatnonzero((data.labels < 0) | (data.labels >= num_classes))
  if bad.size:
    i = int(bad[0])
    raise DataError(f"{data.where(i)}: label {int(data.labels[i])} is "
                    f"outside the {num_classes} classes 0..{num_classes - 1} "
                    f"({split} split; {bad.size} such rows)")


def _check_pairs(splits):
  kinds = {name: data.is_pair for name, data in splits.items()
           if data is not None}
  if len(set(kinds.values())) > 1:
    what = {True: "sentence pairs", False: "single texts"}
    detail = ", ".join(f"{splits[n].source}: {what[p]}"
                       for n, p in kinds.items())
    raise DataError(f"the splits disagree on single texts vs pairs ({detail})")


def _few(values, limit=10):
  shown = ", ".join(str(v) for v in values[:limit])
  return shown + (f" and {len(values) - limit} more" if len(values) > limit
                  else "")
