r"""Classify files on Apache Beam: any runner, one command line.

  fastbert-beam --model=exports/quickstart \
      --input='data/*.txt' --output=out/answers --speed=0.5 \
      [--input_format=txt|tsv|jsonl|tfrecord] [--batch_size=64] \
      [--runner=DirectRunner --direct_num_workers=2 ...]
  (or python -m fastbert_tf.beam.run)

Our flags are read by absl; every other flag goes to Beam's
PipelineOptions (--runner, --project, --region, --temp_location,
--setup_file, --flink_master, ...). Answers land in
`<output>-SSSSS-of-NNNNN.jsonl`, bad input lines in `<output>-bad-*.txt`;
the counts of both are printed at the end (on runners that report
metrics).
"""

import sys

from absl import flags

from fastbert_tf.commands import common

FLAGS = flags.FLAGS


def define_flags():
  """Every flag of the command."""
  flags.DEFINE_string("model", None, "A model directory or SavedModel export "
                      "(any filesystem the workers read, e.g. gs://).")
  flags.DEFINE_string("input", None, "Input file pattern (glob).")
  flags.DEFINE_string("output", None, "Output prefix of the answer shards.")
  flags.DEFINE_float("speed", 0.5, "Early-exit threshold for records "
                     "without their own `speed`.", lower_bound=0.0,
                     upper_bound=1.0)
  # The bounds let NaN through (every comparison with it is false).
  flags.register_validator("speed", lambda v: v == v,
                           "expected a number in [0, 1], got NaN")
  flags.DEFINE_enum("input_format", "", ["", "txt", "tsv", "jsonl",
                                         "tfrecord"],
                    "Input format; empty = from --input's extension.")
  flags.DEFINE_integer("batch_size", 64, "Largest batch per model call.",
                       lower_bound=1)
  flags.DEFINE_boolean("large_model", False, "Load the model once per "
                       "machine, shared by its worker processes.")
  flags.mark_flags_as_required(["model", "input", "output"])


def main(argv):
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  from apache_beam.options.pipeline_options import SetupOptions  # pylint: disable=g-import-not-at-top
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from fastbert_tf.beam import pipeline  # pylint: disable=g-import-not-at-top
  options = PipelineOptions(argv[1:])
  # Workers unpickle the DoFns' module-level state (the parser's imports).
  options.view_as(SetupOptions).save_main_session = False
  try:
    info = pipeline.describe_model(FLAGS.model)
    transform = pipeline.ClassifyFiles(
        FLAGS.input, FLAGS.output, FLAGS.model, FLAGS.speed, info,
        FLAGS.input_format, FLAGS.batch_size, FLAGS.large_model)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f"error: {e}")
  p = beam.Pipeline(options=options)
  _ = p | "ClassifyFiles" >> transform
  result = p.run()
  result.wait_until_finish()
  _print_counts(result)


def _print_counts(result):
  try:
    counters = result.metrics().query()["counters"]
  except (AttributeError, NotImplementedError, KeyError):
    return
  for counter in counters:
    name = counter.key.metric.name
    if name in ("bad_lines", "blank_lines", "num_inferences"):
      value = (counter.committed if counter.committed is not None else
               counter.attempted)
      print(f"{name}: {value}")


def run():
  """fastbert-beam (and `python -m fastbert_tf.beam.run`)."""
  # Unknown flags are Beam's: parse ours, pass the rest on.
  common.run_command(define_flags, main, __doc__,
                     flags_parser=lambda argv: FLAGS(argv, known_only=True))


if __name__ == "__main__":
  run()
