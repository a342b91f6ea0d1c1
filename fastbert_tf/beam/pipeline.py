"""The offline-inference pipeline: files in, JSONL answers out.

  read (text / TSV / JSONL lines, or TFRecords of tf.train.Example)
    -> parse into records.Record (bad lines to a side output)
    -> RunInference(FastBertModelHandler)        batched, model shared
    -> JSON lines -> <output>-SSSSS-of-NNNNN.jsonl
  bad lines -> <output>-bad-SSSSS-of-NNNNN.txt ("file: reason", one a line)

Text files are read with ReadFromText, which knows no line numbers: answers
carry the text itself (and a jsonl `id` when given) to join on. TFRecord inputs hold tf.train.Example records with a bytes feature
`text` and optionally `text_b` (bytes), `label` (int64), `speed` (float)
and `id` (bytes). Empty lines are skipped and counted (`blank_lines`);
every other bad line goes to the bad-lines file (`bad_lines`), a text the
model's tokenizer finds empty (only invisible, control, bidi or combining
characters) included: the handler answers it with a marker that
`_Refused` routes there, so it never fails its batch.
"""

import json

import apache_beam as beam
from apache_beam.io import filesystems
from apache_beam.ml.inference.base import RunInference

from fastbert_tf.beam.inference import BAD_ANSWER
from fastbert_tf.beam.inference import FastBertModelHandler
from fastbert_tf.predictor import records

FORMATS = records.FORMATS + ("tfrecord",)
BAD = "bad"


def detect_format(pattern, explicit=""):
  """The input format by --input_format or the pattern's extension."""
  if explicit == "tfrecord" or (not explicit and str(pattern).lower().endswith(
      (".tfrecord", ".tfrecords", ".tfrecord.gz"))):
    return "tfrecord"
  return records.format_of(pattern, explicit)


def read_tsv_header(pattern):
  """The header line of the first file matching `pattern` (TSV inputs
  configure the parser from it; every file must share it)."""
  matches = filesystems.FileSystems.match([pattern])[0].metadata_list
  if not matches:
    raise FileNotFoundError(f"{pattern}: no file matches")
  first = sorted(m.path for m in matches)[0]
  with filesystems.FileSystems.open(first) as f:
    return f.readline().rstrip(b"\r\n")


class _Parse(beam.DoFn):
  """Line (str) or serialized tf.train.Example -> Record; bad ones to BAD."""

  def __init__(self, fmt, source, text_pair, num_classes, label_names,
               header=None):
    self._args = (fmt, text_pair, num_classes, label_names)
    self._source, self._header = source, header
    self._bad = beam.metrics.Metrics.counter("fastbert", "bad_lines")
    self._blank = beam.metrics.Metrics.counter("fastbert", "blank_lines")

  def setup(self):
    fmt, text_pair, num_classes, names = self._args
    self._parser = records.LineParser(
        "txt" if fmt == "tfrecord" else fmt, text_pair, num_classes, names)
    if self._header is not None:
      self._parser.header(self._header)

  def process(self, element):
    from fastbert_tf.data.rows import RowError  # pylint: disable=g-import-not-at-top
    try:
      if self._args[0] == "tfrecord":
        yield _from_example(element, self._parser)
      elif element:
        yield self._parser.parse(element)
      else:  # ReadFromText cannot tell a blank last line from others
        self._blank.inc()
    except RowError as e:
      self._bad.inc()
      yield beam.pvalue.TaggedOutput(
          BAD, f"{self._source}: {e}")


class _Refused(beam.DoFn):
  """Answers pass; a record the model refused (inference.BAD_ANSWER: a text
  empty to the tokenizer) goes to BAD as `source: reason`, like a bad
  line the parser found."""

  def __init__(self, source):
    self._source = source
    self._bad = beam.metrics.Metrics.counter("fastbert", "bad_lines")

  def process(self, answer):
    if BAD_ANSWER in answer:
      self._bad.inc()
      yield beam.pvalue.TaggedOutput(BAD, f"{self._source}: "
                                     f"{answer[BAD_ANSWER]}")
    else:
      yield answer


def _from_example(serialized, parser):
  from fastbert_tf.data.rows import RowError  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    feature = tf.train.Example.FromString(serialized).features.feature
  except Exception as e:  # pylint: disable=broad-except
    raise RowError(f"not a tf.train.Example ({e})") from None
  obj = {}
  for key, kind in (("text", "bytes_list"), ("text_b", "bytes_list"),
                    ("id", "bytes_list"), ("label", "int64_list"),
                    ("speed", "float_list")):
    if key in feature:
      values = getattr(feature[key], kind).value
      if len(values) != 1:
        raise RowError(f"feature {key!r} needs one {kind} value, has "
                       f"{len(values)}")
      value = values[0]
      obj[key] = value.decode("utf-8") if kind == "bytes_list" else value
  if "text" not in obj:
    raise RowError(f"no bytes feature 'text' (has {sorted(feature)})")
  return parser.from_fields(obj)


class ClassifyFiles(beam.PTransform):
  """Reads, classifies and writes; expands to a PCollection of answers.

  Args:
    input_pattern: str, files to read (globs; any Beam filesystem).
    output_prefix: str, answers go to `<prefix>-SSSSS-of-NNNNN.jsonl`.
    model_path: str, a model directory or export (Predictor.load).
    speed: float, for records without their own.
    input_format: one of FORMATS, or "" for the extension's.
    model_info: {text_pair, num_classes, label_names} of the model, for
      parsing (`describe_model`).
    batch_size: int, the largest batch RunInference forms.
    large_model: bool, one model per machine (FastBertModelHandler).
  """

  def __init__(self, input_pattern, output_prefix, model_path, speed,
               model_info, input_format="", batch_size=64,
               large_model=False):
    super().__init__()
    self.input_pattern, self.output_prefix = input_pattern, output_prefix
    self.fmt = detect_format(input_pattern, input_format)
    self.model_info = model_info
    self.handler = FastBertModelHandler(model_path, speed, batch_size,
                                        large_model=large_model)

  def expand(self, pbegin):
    header = None
    if self.fmt == "tfrecord":
      lines = pbegin | "Read" >> beam.io.ReadFromTFRecord(self.input_pattern)
    else:
      if self.fmt == "tsv":
        header = read_tsv_header(self.input_pattern)
      lines = pbegin | "Read" >> beam.io.ReadFromText(
          self.input_pattern, skip_header_lines=1 if header else 0)
    parsed = lines | "Parse" >> beam.ParDo(_Parse(
        self.fmt, self.input_pattern, header=header,
        **self.model_info)).with_outputs(BAD, main="records")
    results = parsed.records | "Classify" >> RunInference(self.handler)
    split = results | "Refused" >> beam.ParDo(_Refused(
        self.input_pattern)).with_outputs(BAD, main="answers")
    answers = split.answers
    _ = (answers | "ToJson" >> beam.Map(json.dumps, ensure_ascii=False)
         | "Write" >> beam.io.WriteToText(self.output_prefix,
                                          file_name_suffix=".jsonl"))
    _ = ((parsed[BAD], split[BAD]) | "AllBad" >> beam.Flatten()
         | "WriteBad" >> beam.io.WriteToText(
             self.output_prefix + "-bad", file_name_suffix=".txt"))
    return answers


def describe_model(model_path):
  """{text_pair, num_classes, label_names} of a model, for the parser (read
  once when the pipeline is built)."""
  from fastbert_tf.predictor import Predictor  # pylint: disable=g-import-not-at-top
  predictor = Predictor.load(model_path)
  return dict(text_pair=predictor.text_pair,
              num_classes=predictor.num_classes,
              label_names=predictor.label_names)
