r"""Export a trained fastbert_tf model as a TF Serving SavedModel.

  fastbert-export --model_dir=runs/quickstart \
      --export_base=exports/quickstart [--version=N]
  (also python export/export_saved_model.py, python -m
  fastbert_tf.commands.export)

Writes `<export_base>/<version>/` atomically with warmup requests; prints the
path. The signature contract is in export/README.md.
"""

import signal
import sys

from absl import app
from absl import flags
from absl import logging

from fastbert_tf.commands import common
from fastbert_tf.commands import flags as fastbert_flags

FLAGS = flags.FLAGS


def define_flags():
  """Every flag of the command."""
  flags.DEFINE_string("model_dir", None, "A trained model directory.")
  flags.DEFINE_string("export_base", None, "TF Serving model base path.")
  flags.DEFINE_integer("version", None,
                       "Version number (default: next free).")
  flags.DEFINE_float("warmup_speed", 0.5,
                     "Speed used in the warmup requests.")
  flags.DEFINE_enum("dispatch", "cond", ["cond", "tensor_array"],
                    "How the early-exit loop picks layer i: cond (a tf.cond "
                    "tree; convert this one to TFLite) or tensor_array "
                    "(weights read from TensorArrays; faster in TF Serving at "
                    "small batches). Same answers.")
  flags.DEFINE_enum("single_text", "loop", ["loop", "xla"],
                    "How a request of ONE text runs: loop (the tf.while_loop, "
                    "like any batch) or xla (the whole exit rule as one XLA "
                    "program per --xla_buckets length; 1.5x at batch 1 here, "
                    "BENCHMARKS.md). TF Serving then needs "
                    "--xla_cpu_compilation_enabled=true; convert TFLite from "
                    "an export without it.")
  flags.DEFINE_list("xla_buckets", ["16", "32", "64", "128"],
                    "Sequence lengths --single_text=xla pads one text to (one "
                    "XLA compilation each, at load); the model's "
                    "max_seq_length is always added.")
  flags.DEFINE_enum("dtype_policy", None, ["float32", "mixed_bfloat16"],
                    "Compute dtype of the export (default: the model's own). "
                    "mixed_bfloat16 keeps float32 weights, logits and "
                    "uncertainty and runs the layers in bfloat16: fast only on "
                    "CPUs with AVX512_BF16 or AMX (oneDNN), slower elsewhere; "
                    "answers may differ from float32 near the threshold.")
  flags.mark_flags_as_required(["model_dir", "export_base"])
  fastbert_flags.define_exit_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # SIGTERM (a stopped job, a CI timeout) unwinds like Ctrl-C, so the
  # export's temporary directory is removed; kill -9 leaves it to the next
  # export, which removes the directories of exports that died.
  signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
  from fastbert_tf import errors  # pylint: disable=g-import-not-at-top
  from fastbert_tf import paths  # pylint: disable=g-import-not-at-top
  try:
    paths.check_paths(
        [paths.Arg("--model_dir", FLAGS.model_dir, paths.READ_DIR),
         paths.Arg("--export_base", FLAGS.export_base, paths.WRITE_DIR)],
        own_model_dirs=[FLAGS.model_dir])
  except errors.UserError as e:
    sys.exit(f"error: {e}")
  from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import single_text  # pylint: disable=g-import-not-at-top
  try:
    buckets = None
    if FLAGS.single_text == "xla":
      try:
        buckets = [int(b) for b in FLAGS.xla_buckets]
      except ValueError:
        raise ValueError(f"--xla_buckets must be integers, got "
                         f"{','.join(FLAGS.xla_buckets)}") from None
    model, encoder = saving.load_model(FLAGS.model_dir,
                                       dtype=FLAGS.dtype_policy)
    if buckets is not None:
      buckets = single_text.buckets_for(encoder.max_seq_length, buckets)
      if model.dtype_policy.compute_dtype != "float32":
        logging.warning(
            "--single_text=xla with compute dtype %s: XLA's CPU matmuls in "
            "that dtype are slower than float32 (export/README.md); "
            "consider --dtype_policy=float32",
            model.dtype_policy.compute_dtype)
    with paths.disk_errors(FLAGS.export_base):
      path = exporter.export_saved_model(
          model, encoder, FLAGS.export_base, FLAGS.version,
          FLAGS.warmup_speed, fastbert_flags.exit_criterion_from_flags(FLAGS),
          FLAGS.dispatch, single_text_buckets=buckets)
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    sys.exit(f"error: {e}")
  print(path)


def run():
  """fastbert-export (and `python export/export_saved_model.py`)."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
