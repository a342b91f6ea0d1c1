"""What every example source shares: the dataset type, its errors and the
row checks (label range, UTF-8, and after the tokenizer is known the text
rule: `refuse_empty_texts`) with their bookkeeping.

`sources` (TSV, plain text), `tfds_source` and `quickstart` build their
TextDatasets through `Collector`, so a bad row reads the same everywhere:
`path:line: reason`, offending value shown, raised as DataError or, under
skip_bad_rows, recorded as a BadRow and logged; never dropped silently.
"""

import dataclasses
import functools

from absl import logging
import numpy as np

from fastbert_tf.errors import UserError


class DataError(UserError, ValueError):
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
    lines: tuple of n int, where each example is in its source (the
      1-based file line, header = 1; for tfds the example number), for
      `path:line` messages; None when unknown.
  """
  texts_a: tuple[str, ...]
  texts_b: tuple[str, ...] | None
  labels: np.ndarray | None
  source: str
  skipped: tuple["BadRow", ...] = ()
  lines: tuple[int, ...] | None = None

  def __post_init__(self):
    # Here, so dataclasses.replace() (e.g. truncation) is normalised too.
    set_ = functools.partial(object.__setattr__, self)
    set_("texts_a", tuple(self.texts_a))
    set_("skipped", tuple(self.skipped))
    if self.texts_b is not None:
      set_("texts_b", tuple(self.texts_b))
    if self.lines is not None:
      set_("lines", tuple(int(n) for n in self.lines))
    if self.labels is not None:
      # A copy, made read-only: frozen should mean frozen, the array included.
      set_("labels", np.array(self.labels, dtype=np.int32))
      self.labels.setflags(write=False)
    sizes = {len(x) for x in (self.texts_a, self.texts_b, self.labels,
                              self.lines) if x is not None}
    if len(sizes) != 1:
      raise ValueError(f"{self.source}: texts_a, texts_b, labels differ in "
                       f"length: {sizes}")

  def __len__(self) -> int:
    return len(self.texts_a)

  def where(self, index):
    """`source:line` of example `index` (0-based), for messages."""
    path = self.source
    if self.lines is None:
      return f"{path} (example {index + 1})"
    return f"{path}:{self.lines[index]}"

  def head(self, n):
    """The first n examples (skipped rows kept for the record)."""
    cut = lambda x: None if x is None else x[:n]
    return dataclasses.replace(self, texts_a=self.texts_a[:n],
                               texts_b=cut(self.texts_b),
                               labels=cut(self.labels), lines=cut(self.lines))

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


# The text rule's wording, shared by every path that applies it. What is
# empty is decided by the tokenizer (data.tokenizer.Encoder.empty_texts):
# a text is empty when it yields no token besides the framing.
EMPTY_TEXT = ("is empty to the tokenizer: it yields no token besides "
              "[CLS]/[SEP] (blank, or only invisible, control, bidi or "
              "combining characters); expected a letter, digit or symbol")


def empty_text_message(name, text):
  """`name is empty to the tokenizer ...: 'text'`, one line."""
  return f"{name} {EMPTY_TEXT}: {show(text)}"


def refuse_empty_texts(data, encoder, skip_bad_rows=False,
                       max_bad_rows="1%"):
  """Applies the text rule to a loaded dataset: the examples `encoder`
  finds empty (data.tokenizer.Encoder.empty_texts) become bad rows,
  reported like every other (`path:line: text_a is empty ...`).

  Args:
    data: TextDataset.
    encoder: a data.tokenizer.Encoder (the run's or the model's).
    skip_bad_rows, max_bad_rows: as for the loaders; the rows the loader
      already skipped count towards max_bad_rows.

  Returns:
    TextDataset without the empty examples (data itself when none is).

  Raises:
    DataError: the first empty example (without skip_bad_rows), more bad
      rows than max_bad_rows allows, or no example left.
  """
  empty_a = encoder.empty_texts(data.texts_a)
  empty_b = (encoder.empty_texts(data.texts_b) if data.is_pair else
             np.zeros_like(empty_a))
  if not (empty_a.any() or empty_b.any()):
    return data
  rows = Collector(data.source, data.is_pair, None, skip_bad_rows,
                   max_bad_rows)
  rows.skipped = list(data.skipped)
  labels = data.labels if data.labels is not None else [None] * len(data)
  for i, label in enumerate(labels):
    a = data.texts_a[i]
    b = data.texts_b[i] if data.is_pair else None
    reason = (empty_text_message("text_a", a) if empty_a[i] else
              empty_text_message("text_b", b) if empty_b[i] else None)

    def parse(label=label, a=a, b=b, reason=reason):
      if reason:
        raise RowError(reason)
      return label, a, b
    rows.add(data.lines[i] if data.lines is not None else i + 1, parse)
  rows.skipped.sort(key=lambda r: r.line)
  out = rows.finish(data.source, labelled=data.labels is not None)
  return dataclasses.replace(out, lines=out.lines if data.lines is not None
                             else None)


def parse_max_bad_rows(value):
  """`--max_bad_rows`: "20" (rows) or "1%" / "0.01" (a share of the rows
  read) -> (count or None, fraction or None).

  Raises:
    DataError: naming the flag and the value.
  """
  text = str(value).strip()
  try:
    if text.endswith("%"):
      fraction = float(text[:-1]) / 100
    elif "." in text:
      fraction = float(text)
    else:
      count = int(text)
      if count < 0:
        raise ValueError
      return count, None
  except ValueError:
    raise DataError(f"--max_bad_rows={value!r}: expected a row count (20) or "
                    "a share of the rows (1% or 0.01)") from None
  if not 0.0 <= fraction <= 1.0:
    raise DataError(f"--max_bad_rows={value!r}: a share must lie in [0, 1]")
  return None, fraction


class Collector:
  """Accumulates validated rows; raises on a bad one or records it.

  Under skip_bad_rows at most `max_bad_rows` rows (a count, or a share of
  the rows read: see parse_max_bad_rows) may be skipped; more stops the
  run, so a file of the wrong format is never trained on silently.
  """

  def __init__(self, path, pair, num_classes, skip_bad_rows,
               max_bad_rows="1%"):
    self.path, self.pair = path, pair
    self.num_classes, self.skip_bad_rows = num_classes, skip_bad_rows
    self.max_count, self.max_fraction = parse_max_bad_rows(max_bad_rows)
    self.texts_a, self.texts_b, self.labels, self.skipped = [], [], [], []
    self.lines = []

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
    self.lines.append(line)

  def bad(self, line, reason):
    row = BadRow(self.path, line, reason)
    if not self.skip_bad_rows:
      raise DataError(str(row))
    self.skipped.append(row)

  def finish(self, source, labelled=True):
    """Builds the TextDataset; logs skipped rows; no rows, or more skipped
    rows than allowed -> DataError."""
    first = "".join(f"\n  {r}" for r in self.skipped[:10])
    read = len(self.texts_a) + len(self.skipped)
    cap = (self.max_count if self.max_count is not None else
           int(self.max_fraction * read))
    if self.texts_a and len(self.skipped) > cap:
      raise DataError(
          f"{self.path}: {len(self.skipped)} of {read} rows are bad, more "
          f"than --max_bad_rows allows ({cap}); is this the expected "
          f"format? First bad rows:{first}")
    if self.skipped:
      logging.warning("%s: skipped %d bad rows (skip_bad_rows); first %d:%s",
                      self.path, len(self.skipped),
                      min(10, len(self.skipped)), first)
    if not self.texts_a:
      detail = first and f"; all {len(self.skipped)} rows were bad:{first}"
      raise DataError(f"{self.path}: no examples{detail}")
    return TextDataset(self.texts_a, self.texts_b if self.pair else None,
                       self.labels if labelled else None, source, self.skipped,
                       self.lines)


def decode(raw):
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise RowError(f"invalid UTF-8 at byte {e.start}: {show(raw)}") from None
