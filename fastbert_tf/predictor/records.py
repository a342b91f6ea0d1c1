"""Files of texts to classify and files of answers, streamed line by line.

Inputs (by extension, or an explicit format):
  txt    one text per line (`text_a<TAB>text_b` for pair models);
  tsv    a header line, then `[label<TAB>]text_a[<TAB>text_b]`: the training
         format (labels are class ids), or the same without the label column;
  jsonl  one object per line: `text` (or `text_a`), and optionally `text_b`,
         `label` (id, or name when the model has names), `speed` (this
         record's threshold) and `id` (copied to the answer).
A bad line raises rows.RowError (`parse`) or is yielded as a BadRow
(`read_records`), always with its 1-based line number (header = 1); empty
lines at the end of a file are ignored, elsewhere they are bad lines.

Outputs: jsonl (one object per answer) or tsv (a header, then one row per
answer), in input order. Pure Python: the Beam pipeline parses and formats
with the same functions.
"""

import dataclasses
import json

from fastbert_tf.data.rows import BadRow
from fastbert_tf.data.rows import decode
from fastbert_tf.data.rows import empty_text_message
from fastbert_tf.data.rows import RowError
from fastbert_tf.data.rows import show

FORMATS = ("txt", "tsv", "jsonl")
OUTPUT_FORMATS = ("jsonl", "tsv")
_EXTENSIONS = {".txt": "txt", ".text": "txt", ".tsv": "tsv", ".jsonl": "jsonl",
               ".json": "jsonl"}
_TSV_HEADERS = {("text_a",): False, ("text_a", "text_b"): False,
                ("label", "text_a"): True, ("label", "text_a", "text_b"): True}


@dataclasses.dataclass(frozen=True)
class Record:
  """One text (or pair) to classify.

  Attributes:
    line: int, 1-based line of the input file (0 when not from a file).
    text: str; text_b: str or None.
    label: int class id or None (unlabelled).
    speed: float in [0, 1] or None (the run's speed).
    id: any json value from a jsonl `id` field, or None.
  """
  line: int
  text: str
  text_b: str | None = None
  label: int | None = None
  speed: float | None = None
  id: object = None


def format_of(path, explicit="", allowed=FORMATS):
  """The format named by `explicit`, else by the path's extension.

  Raises:
    ValueError: neither names one of `allowed`.
  """
  if explicit:
    if explicit not in allowed:
      raise ValueError(f"format {explicit!r}: expected one of {allowed}")
    return explicit
  for ext, fmt in _EXTENSIONS.items():
    if str(path).lower().endswith(ext) and fmt in allowed:
      return fmt
  raise ValueError(f"{path}: cannot tell the format from the extension; "
                   f"name it *.{' / *.'.join(allowed)} or give the format "
                   f"({', '.join(allowed)})")


class LineParser:
  """Parses the lines of one input file.

  Args:
    fmt: one of FORMATS.
    text_pair: bool, whether the model takes pairs.
    num_classes: int, for checking labels.
    label_names: tuple of str or None, to accept jsonl labels by name.
  """

  def __init__(self, fmt, text_pair, num_classes, label_names=None):
    if fmt not in FORMATS:
      raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    self.fmt, self.text_pair = fmt, bool(text_pair)
    self.num_classes = int(num_classes)
    self.label_names = tuple(label_names) if label_names else None
    self.labelled = None  # tsv: set by the header
    self.needs_header = fmt == "tsv"

  def header(self, raw):
    """Reads a tsv header line; raises RowError if it is not one."""
    fields = tuple(_text(raw).removeprefix("\ufeff").split("\t"))
    if fields not in _TSV_HEADERS:
      raise RowError(f"bad header {show(chr(9).join(fields))}: expected "
                     "[label<TAB>]text_a[<TAB>text_b]")
    if ("text_b" in fields) != self.text_pair:
      raise RowError(self._pairs_message("the header has " + (
          "text_b" if "text_b" in fields else "no text_b")))
    self.labelled = _TSV_HEADERS[fields]
    self.needs_header = False

  def parse(self, raw, line=0):
    """One non-blank line (str or bytes, no line ending) -> Record."""
    text = _text(raw)
    if self.fmt == "jsonl":
      return self._json(text, line)
    fields = text.split("\t") if (self.fmt == "tsv" or self.text_pair) else [
        text]
    label = None
    if self.fmt == "tsv":
      width = 1 + int(self.labelled) + int(self.text_pair)
      if len(fields) != width:
        raise RowError(f"wrong column count: found {len(fields)}, expected "
                       f"{width}: {show(text)}")
      if self.labelled:
        label = self._label(fields.pop(0))
    elif self.text_pair and len(fields) != 2:
      raise RowError(f"a pair model needs text_a<TAB>text_b, found "
                     f"{len(fields)} fields: {show(text)}")
    return Record(line, _check("text_a", fields[0]),
                  _check("text_b", fields[1]) if self.text_pair else None,
                  label)

  def _json(self, text, line):
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise RowError(f"not valid json ({e.msg} at column {e.colno}): "
                     f"{show(text)}") from None
    if not isinstance(obj, dict):
      raise RowError(f"expected a json object, got {show(obj)}")
    return self.from_fields(obj, line)

  def from_fields(self, obj, line=0):
    """A jsonl record's fields (dict) -> Record; raises RowError."""
    if ("text" in obj) == ("text_a" in obj):
      raise RowError(f"needs exactly one of the fields text, text_a: "
                     f"{show(obj)}")
    text_a = obj.get("text", obj.get("text_a"))
    if ("text_b" in obj) != self.text_pair:
      raise RowError(self._pairs_message(
          "the record has " + ("text_b" if "text_b" in obj else "no text_b")))
    speed = obj.get("speed")
    if speed is not None and not (
        isinstance(speed, (int, float)) and not isinstance(speed, bool) and
        0.0 <= speed <= 1.0):
      raise RowError(f"speed must be a number in [0, 1], got {show(speed)}")
    label = obj.get("label")
    return Record(line, _check("text", text_a),
                  _check("text_b", obj["text_b"]) if self.text_pair else None,
                  None if label is None else self._label(label),
                  None if speed is None else float(speed), obj.get("id"))

  def _label(self, value):
    if isinstance(value, str) and self.label_names and (
        value in self.label_names):
      return self.label_names.index(value)
    if isinstance(value, str) and value.lstrip("-").isdigit() and (
        value.isascii()):
      value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
      names = f" or one of {list(self.label_names)}" if self.label_names else ""
      raise RowError(f"label {show(value)} is not a class id{names}")
    if not 0 <= value < self.num_classes:
      raise RowError(f"label {value} out of range: expected 0 <= label < "
                     f"{self.num_classes} (the model's classes)")
    return value

  def _pairs_message(self, found):
    return (f"{found}, but the model takes "
            f"{'sentence pairs' if self.text_pair else 'single texts'}")


def read_records(path, parser, lines):
  """Yields a Record or a BadRow for every non-blank line.

  Args:
    path: str, for messages.
    parser: LineParser.
    lines: iterable of (1-based line number, bytes or str without the line
      ending).

  Bad lines come back as BadRow, never raised; after a bad tsv header
  (a BadRow at its line) nothing else follows.
  """
  blanks = []
  for number, raw in lines:
    if not raw:  # whitespace-only lines are bad texts, named as such
      blanks.append(number)
      continue
    for blank in blanks:
      yield BadRow(path, blank, "blank line (expected a text)")
    blanks = []
    try:
      if parser.needs_header:
        parser.header(raw)
        continue
      yield parser.parse(raw, number)
    except RowError as e:
      yield BadRow(path, number, str(e))
      if parser.needs_header:
        return


def open_lines(path):
  """Yields (1-based line number, bytes without the line ending) of a file
  (`-`: standard input)."""
  import sys  # pylint: disable=g-import-not-at-top
  f = sys.stdin.buffer if path == "-" else open(path, "rb")
  try:
    for number, raw in enumerate(f, start=1):
      raw = raw.rstrip(b"\n")
      yield number, raw[:-1] if raw.endswith(b"\r") else raw
  finally:
    if f is not sys.stdin.buffer:
      f.close()


def answer(record, predictions, i, digits=6):
  """The output dict of record's answer, predictions' row i (`line` only
  when the record has one)."""
  out = dict(line=record.line) if record.line else {}
  if record.id is not None:
    out["id"] = record.id
  row = predictions.record(i)
  row["probabilities"] = [round(p, digits) for p in row["probabilities"]]
  row["uncertainty"] = round(row["uncertainty"], digits)
  out.update(row)
  return out


def tsv_header(label_names, num_classes):
  names = label_names or [str(k) for k in range(num_classes)]
  return "\t".join(["line", "label", "label_name"] +
                   [f"p_{_tsv_safe(n)}" for n in names] +
                   ["exit_layer", "uncertainty", "flops"])


def format_answer(out, fmt):
  """One output line (no newline) for an `answer` dict."""
  if fmt == "jsonl":
    return json.dumps(out, ensure_ascii=False)
  return "\t".join([str(out.get("line", "")), str(out["label"]),
                    _tsv_safe(out["label_name"])] +
                   [repr(p) for p in out["probabilities"]] +
                   [str(out["exit_layer"]), repr(out["uncertainty"]),
                    repr(out["flops"])])


def _tsv_safe(text):
  return str(text).replace("\t", " ").replace("\n", " ")


def _text(raw):
  return decode(raw) if isinstance(raw, bytes) else raw


def _check(name, text):
  if not isinstance(text, str):
    raise RowError(f"{name} must be a string, got {show(text)}")
  # Blank is the one kind of empty text that needs no tokenizer to see, and
  # parsing runs before any model is loaded (Beam parses on other workers):
  # refused here, in the text rule's words. The rule itself (invisible-only
  # text too) is applied where the model is: predict.classify_file and the
  # Predictor.
  if not text.strip():
    raise RowError(empty_text_message(name, text))
  return text

