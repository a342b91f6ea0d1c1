r"""Classify a file of texts with early exit.

  python -m fastbert_tf.predict --model_dir=runs/quickstart \
      --input=texts.txt --output=answers.jsonl --speed=0.5 [--batch_size=64]

--model_dir is a training model directory or an export (a SavedModel
version directory or its base). --input is `*.txt` (one text per line),
`*.tsv` (header, `[label<TAB>]text_a[<TAB>text_b]`) or `*.jsonl` (`text`,
optional `text_b`, `label`, `speed`, `id`), or `-` for standard input with
--input_format. The file is streamed: any size, one answer line per input
line, in order (label, label name, probabilities, exit layer, uncertainty,
FLOPs; jsonl or tsv by --output's extension), written to OUTPUT.partial and
renamed when complete. At the end it prints samples/s, the mean exit layer,
the FLOPs speedup, and the accuracy when the input has labels.

A bad line (empty text, wrong columns, invalid json or UTF-8, a label or
speed out of range) stops the run with `path:line: what is wrong`;
--skip_bad_rows skips such lines instead, reporting each.

Exit status: 0 on success, 1 on a usage, input or model error.
"""

import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

from fastbert_tf import cli

FLAGS = flags.FLAGS
CHUNK_BATCHES = 8  # batches read ahead and classified per Predictor call
_SHOWN_BAD_ROWS = 20


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training model directory or an "
                      "export (SavedModel version directory, or its base: "
                      "the newest version).")
  flags.DEFINE_string("input", None, "Texts to classify: *.txt, *.tsv, "
                      "*.jsonl, or - (standard input) with --input_format.")
  flags.DEFINE_string("output", None, "Where the answers go: *.jsonl or "
                      "*.tsv, or - (standard output, jsonl).")
  flags.DEFINE_float("speed", 0.5, "Early-exit threshold in [0, 1]: 0 = the "
                     "full model, higher = earlier exits. A jsonl record's "
                     "`speed` overrides it.", lower_bound=0.0, upper_bound=1.0)
  # The bounds let NaN through (every comparison with it is false).
  flags.register_validator("speed", lambda v: v == v,
                           "expected a number in [0, 1], got NaN")
  flags.DEFINE_integer("batch_size", 64, "Texts per graph call.",
                       lower_bound=1)
  flags.DEFINE_enum("input_format", "", ["", "txt", "tsv", "jsonl"],
                    "Input format; empty = from --input's extension.")
  flags.DEFINE_enum("output_format", "", ["", "jsonl", "tsv"],
                    "Output format; empty = from --output's extension.")
  flags.DEFINE_boolean("skip_bad_rows", False, "Skip bad input lines "
                       "(reporting each as path:line) instead of stopping.")
  flags.DEFINE_string("dtype", "", "Model directories: run in this Keras "
                      "dtype policy instead of the saved one (e.g. float32).")
  flags.DEFINE_boolean("progress", None, "Show a progress bar; default: when "
                       "standard error is a terminal.")
  flags.mark_flags_as_required(["model_dir", "input", "output"])


class Totals:
  """Running totals of a run: counts, exits, FLOPs, accuracy."""

  def __init__(self):
    self.samples = self.skipped = self.labelled = self.correct = 0
    self.exit_layers = self.flops = 0.0

  def add(self, records, predictions):
    self.samples += len(records)
    self.exit_layers += float(predictions.exit_layer.sum())
    self.flops += float(predictions.flops.sum())
    for record, label in zip(records, predictions.label):
      if record.label is not None:
        self.labelled += 1
        self.correct += int(record.label == label)

  def summary(self, seconds, model_seconds, baseline_flops):
    n = max(self.samples, 1)
    lines = [
        f"{self.samples} samples in {seconds:.1f} s: "
        f"{self.samples / max(seconds, 1e-9):.1f} samples/s "
        f"({model_seconds:.1f} s in the model)",
        f"mean exit layer {self.exit_layers / n:.2f}, mean FLOPs "
        f"{self.flops / n / 1e6:,.1f}M, speedup "
        f"{baseline_flops * self.samples / max(self.flops, 1e-9):.2f}x "
        f"(full model {baseline_flops / 1e6:,.1f}M)"]
    if self.labelled:
      lines.append(f"accuracy {100 * self.correct / self.labelled:.2f}% "
                   f"({self.correct} of {self.labelled} labelled)")
    if self.skipped:
      lines.append(f"skipped {self.skipped} bad lines")
    return "\n".join(lines)


def _count_lines(path):
  if path == "-":
    return None
  count = 0
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      count += block.count(b"\n")
  return count


def _chunks(items, size):
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def _refuse_empty(predictor, path, chunk, input_format):
  """The chunk with each record whose text the model's tokenizer finds
  empty (the text rule) replaced by a BadRow at its line."""
  from fastbert_tf.data.rows import BadRow  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.rows import empty_text_message  # pylint: disable=g-import-not-at-top
  good = [i for i, r in enumerate(chunk) if not isinstance(r, BadRow)]
  if predictor.empty_texts is None or not good:
    return chunk
  chunk = list(chunk)
  fields = [("text" if input_format == "jsonl" else "text_a",
             lambda r: r.text)]
  if predictor.text_pair:
    fields.append(("text_b", lambda r: r.text_b))
  for name, field in fields:
    texts = [field(chunk[i]) for i in good]
    for j in np.flatnonzero(predictor.empty_texts(texts)):
      record = chunk[good[j]]
      if not isinstance(record, BadRow):
        chunk[good[j]] = BadRow(path, record.line,
                                empty_text_message(name, texts[j]))
  return chunk


def classify_file(predictor, input_path, output, speed, batch_size,
                  input_format, output_format, skip_bad_rows=False,
                  progress=None, log=sys.stderr):
  """Streams input_path through the predictor into the open `output`.

  Returns:
    (Totals, seconds inside predictor.predict).

  Raises:
    rows.DataError: a bad line without skip_bad_rows (`path:line: ...`).
  """
  from fastbert_tf import prediction_io as io  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.rows import BadRow  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.rows import DataError  # pylint: disable=g-import-not-at-top
  parser = io.LineParser(input_format, predictor.text_pair,
                         predictor.num_classes, predictor.label_names)
  if output_format == "tsv":
    output.write(io.tsv_header(predictor.label_names, predictor.num_classes)
                 + "\n")
  totals, model_seconds, done = Totals(), 0.0, 0
  records = io.read_records(input_path, parser, io.open_lines(input_path))
  for chunk in _chunks(records, batch_size * CHUNK_BATCHES):
    chunk = _refuse_empty(predictor, input_path, chunk, input_format)
    bad = [r for r in chunk if isinstance(r, BadRow)]
    for row in bad:
      if not skip_bad_rows:
        raise DataError(f"{row} (--skip_bad_rows skips such lines)")
      if totals.skipped < _SHOWN_BAD_ROWS:
        print(f"skipped {row}", file=log, flush=True)
      totals.skipped += 1
    good = [r for r in chunk if not isinstance(r, BadRow)]
    if good:
      start = time.perf_counter()
      out = predictor.predict(
          [r.text for r in good],
          speed=[speed if r.speed is None else r.speed for r in good],
          text_b=[r.text_b for r in good] if predictor.text_pair else None,
          batch_size=batch_size)
      model_seconds += time.perf_counter() - start
      output.write("".join(io.format_answer(io.answer(r, out, i),
                                            output_format) + "\n"
                           for i, r in enumerate(good)))
      totals.add(good, out)
    done = max(r.line for r in chunk)
    if progress is not None:
      progress.update(done)
  return totals, model_seconds


def path_args(flag_values):
  """The command's path arguments, for paths.check_paths."""
  from fastbert_tf import paths  # pylint: disable=g-import-not-at-top
  return [paths.Arg("--model_dir", flag_values.model_dir, paths.READ_DIR),
          paths.Arg("--input", flag_values.input, paths.READ_FILE),
          paths.Arg("--output", flag_values.output, paths.WRITE_FILE)]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from fastbert_tf import prediction_io as io  # pylint: disable=g-import-not-at-top
  from fastbert_tf import errors  # pylint: disable=g-import-not-at-top
  from fastbert_tf import paths  # pylint: disable=g-import-not-at-top
  try:
    # Before the model loads: --output=--input would replace the texts.
    # And before the formats: a missing file is the first thing to say.
    paths.check_paths(path_args(FLAGS), own_model_dirs=[FLAGS.model_dir])
  except errors.UserError as e:
    sys.exit(f"error: {errors.one_line(e)}")
  try:
    in_fmt = io.format_of(FLAGS.input, FLAGS.input_format)
    out_fmt = io.format_of("x.jsonl" if FLAGS.output == "-" else FLAGS.output,
                           FLAGS.output_format, io.OUTPUT_FORMATS)
  except ValueError as e:
    sys.exit(f"error: {e}")
  from fastbert_tf.predictor import Predictor  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  try:
    predictor = Predictor.load(FLAGS.model_dir, batch_size=FLAGS.batch_size,
                               dtype=FLAGS.dtype or None)
  except (FileNotFoundError, ValueError, errors.UserError) as e:
    sys.exit(f"error: {errors.one_line(e)}")
  load_seconds = time.perf_counter() - start
  show = sys.stderr.isatty() if FLAGS.progress is None else FLAGS.progress
  progress = None
  if show:
    import keras  # pylint: disable=g-import-not-at-top
    progress = keras.utils.Progbar(_count_lines(FLAGS.input),
                                   unit_name="line")
  to_stdout = FLAGS.output == "-"
  partial = None if to_stdout else FLAGS.output + ".partial"
  try:
    if not to_stdout:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)),
                  exist_ok=True)
    output = sys.stdout if to_stdout else open(partial, "w",
                                               encoding="utf-8")
  except OSError as e:
    sys.exit(f"error: {e.filename or partial}: cannot be written "
             f"({e.strerror}); expected a writable --output")
  start = time.perf_counter()
  try:
    totals, model_seconds = classify_file(
        predictor, FLAGS.input, output, FLAGS.speed, FLAGS.batch_size,
        in_fmt, out_fmt, FLAGS.skip_bad_rows, progress)
  except (errors.UserError, OSError) as e:
    if not to_stdout:
      output.close()
    sys.exit(f"error: {e}" + ("" if to_stdout else
                              f" (answers so far are in {partial})"))
  if not to_stdout:
    output.close()
    os.replace(partial, FLAGS.output)
  seconds = time.perf_counter() - start
  report = sys.stderr if to_stdout else sys.stdout
  print(f"model {predictor.source} loaded in {load_seconds:.1f} s; speed "
        f"{FLAGS.speed:g}", file=report)
  print(totals.summary(seconds, model_seconds, predictor.baseline_flops),
        file=report)
  if not to_stdout:
    print(f"wrote {FLAGS.output}", file=report)


def run():
  cli.quiet_tensorflow_logs()
  define_flags()
  cli.project_flags_in_help()
  cli.use_doc(__doc__)
  app.run(main)


if __name__ == "__main__":
  run()
