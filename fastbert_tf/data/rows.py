"""What every example source shares: the dataset type, its errors and the
row checks (label range, non-empty text, UTF-8) with their bookkeeping.

`sources` (TSV, plain text), `tfds_source` and `quickstart` build their
TextDatasets through `Collector`, so a bad row reads the same everywhere:
`path:line: reason`, offending value shown, raised as DataError or, under
skip_bad_rows, recorded as a BadRow and logged; never dropped silently.
"""

import dataclasses
import functools

from absl import logging
import numpy as np


class DataError(ValueError):
  """Bad input data; message is `path:line: what is wrong` (`path: ...`)."""


@dataclasses.dataclass(frozen=True)
class BadRow:
  """A row skipped under `skip_bad_rows`: `line` is the 1-based file line
  (header = 1), or for tfds the 1-based example number."""
  path: str
  line: int
  reason: str

  def __str__(self):
    return f"{self.path}:{self.line}: {self.reason}"


# eq=False: the generated __eq__/__hash__ would compare/hash the labels
# ndarray, which raises; identity semantics are what callers can rely on.
@dataclasses.dataclass(frozen=True, eq=False)
class TextDataset:
  """Labelled (or unlabeled) text examples held in memory.

  Attributes:
    texts_a: tuple of n str, the first (or only) text of each example.
    texts_b: tuple of n str for sentence-pair tasks; None for single-sentence.
    labels: int32 [n] read-only array of class ids; None for unlabeled text.
    source: human-readable origin, e.g. "path/train.tsv" or
      "tfds:ag_news_subset[test]".
    skipped: rows skipped under skip_bad_rows, in file order, for reporting.
  """
  texts_a: tuple[str, ...]
  texts_b: tuple[str, ...] | None
  labels: np.ndarray | None
  source: str
  skipped: tuple["BadRow", ...] = ()

  def __post_init__(self):
    # Here, so dataclasses.replace() (e.g. truncation) is normalised too.
    set_ = functools.partial(object.__setattr__, self)
    set_("texts_a", tuple(self.texts_a))
    set_("skipped", tuple(self.skipped))
    if self.texts_b is not None:
      set_("texts_b", tuple(self.texts_b))
    if self.labels is not None:
      # A copy, made read-only: frozen should mean frozen, the array included.
      set_("labels", np.array(self.labels, dtype=np.int32))
      self.labels.setflags(write=False)
    sizes = {len(x) for x in (self.texts_a, self.texts_b, self.labels)
             if x is not None}
    if len(sizes) != 1:
      raise ValueError(f"{self.source}: texts_a, texts_b, labels differ in "
                       f"length: {sizes}")

  def __len__(self) -> int:
    return len(self.texts_a)

  @property
  def is_pair(self) -> bool:
    return self.texts_b is not None


class RowError(Exception):
  """A bad row; the message is the reason, without the location."""


def show(value, limit=60):
  """repr(value), truncated so one huge line cannot flood an error message."""
  text = repr(value)
  return text if len(text) <= limit else text[:limit - 3] + "..."


def check_label(label, num_classes):
  """Returns label if 0 <= label < num_classes (or int32 max), else raises."""
  if label < 0:
    raise RowError(f"label {label} is negative; labels are class ids from 0")
  upper, why = (num_classes, "num_classes") if num_classes is not None else (
      2**31, "int32")
  if label >= upper:
    raise RowError(f"label {label} out of range: expected 0 <= label < "
                    f"{upper} ({why})")
  return label


def check_text(name, text):
  if not text.strip():
    raise RowError(f"{name} is empty or whitespace-only: {show(text)}")
  return text


class Collector:
  """Accumulates validated rows; raises on a bad one or records it."""

  def __init__(self, path, pair, num_classes, skip_bad_rows):
    self.path, self.pair = path, pair
    self.num_classes, self.skip_bad_rows = num_classes, skip_bad_rows
    self.texts_a, self.texts_b, self.labels, self.skipped = [], [], [], []

  def add(self, line, parse):
    """Calls parse() -> (label, text_a, text_b); a RowError makes a bad row."""
    try:
      label, text_a, text_b = parse()
    except RowError as e:
      self.bad(line, str(e))
      return
    self.labels.append(label)
    self.texts_a.append(text_a)
    self.texts_b.append(text_b)

  def bad(self, line, reason):
    row = BadRow(self.path, line, reason)
    if not self.skip_bad_rows:
      raise DataError(str(row))
    self.skipped.append(row)

  def finish(self, source, labelled=True):
    """Builds the TextDataset; logs skipped rows; no rows -> DataError."""
    first = "".join(f"\n  {r}" for r in self.skipped[:10])
    if self.skipped:
      logging.warning("%s: skipped %d bad rows (skip_bad_rows); first %d:%s",
                      self.path, len(self.skipped),
                      min(10, len(self.skipped)), first)
    if not self.texts_a:
      detail = first and f"; all {len(self.skipped)} rows were bad:{first}"
      raise DataError(f"{self.path}: no examples{detail}")
    return TextDataset(self.texts_a, self.texts_b if self.pair else None,
                       self.labels if labelled else None, source, self.skipped)


def decode(raw):
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise RowError(f"invalid UTF-8 at byte {e.start}: {show(raw)}") from None
