r"""Classify a file of texts with early exit.

  fastbert-predict --model_dir=runs/quickstart \
      --input=texts.txt --output=answers.jsonl --speed=0.5 [--batch_size=64]
  (or python -m fastbert_tf.predict)

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

from fastbert_tf.commands import common

FLAGS = flags.FLAGS


def define_flags():
  """Every flag of the command."""
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


def path_args(flag_values):
  """The command's path arguments, for paths.check_paths."""
  from fastbert_tf import paths  # pylint: disable=g-import-not-at-top
  return [paths.Arg("--model_dir", flag_values.model_dir, paths.READ_DIR),
          paths.Arg("--input", flag_values.input, paths.READ_FILE),
          paths.Arg("--output", flag_values.output, paths.WRITE_FILE)]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from fastbert_tf.predictor import records as io  # pylint: disable=g-import-not-at-top
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
  from fastbert_tf.predictor import stream  # pylint: disable=g-import-not-at-top
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
    progress = keras.utils.Progbar(stream.count_lines(FLAGS.input),
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
    totals, model_seconds = stream.classify_file(
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
  """fastbert-predict (and `python -m fastbert_tf.predict`)."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
