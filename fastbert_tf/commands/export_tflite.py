r"""Convert an exported SavedModel to TFLite.

  python export/export_tflite.py --saved_model=exports/quickstart/1 \
      --output=quickstart.tflite [--quantize=dynamic] [--variant=text]
  (also python -m fastbert_tf.commands.export_tflite)

--variant=ids (default) converts `predict_ids` with builtin ops only;
--variant=text converts `predict_text`, tokenizer included (tf-text custom
ops). The early-exit loop stays in the model and `speed` stays an input. Run
the result with LiteRT (fastbert_tf.export.tflite.LiteRTRunner), not
tf.lite.Interpreter.
"""

import os
import sys

from absl import app
from absl import flags

from fastbert_tf.commands import common

FLAGS = flags.FLAGS


def define_flags():
  """Every flag of the command."""
  flags.DEFINE_string("saved_model", None, "An exported version directory.")
  flags.DEFINE_string("output", None, "Where to write the .tflite file.")
  flags.DEFINE_enum("quantize", "none", ["none", "dynamic"],
                    "dynamic = dynamic-range quantization (int8 weights).")
  flags.DEFINE_enum("variant", "ids", ["ids", "text"],
                    "ids = token-id inputs, builtin ops only; text = raw "
                    "strings in, the tokenizer as tf-text custom ops.")
  flags.mark_flags_as_required(["saved_model", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from fastbert_tf import errors  # pylint: disable=g-import-not-at-top
  from fastbert_tf import paths  # pylint: disable=g-import-not-at-top
  try:
    paths.check_paths(
        [paths.Arg("--saved_model", FLAGS.saved_model, paths.READ_DIR),
         paths.Arg("--output", FLAGS.output, paths.WRITE_FILE)])
  except errors.UserError as e:
    sys.exit(f"error: {e}")
  if not os.path.isfile(os.path.join(FLAGS.saved_model, "saved_model.pb")):
    sys.exit(f"error: {FLAGS.saved_model}: no saved_model.pb; pass an "
             "export version directory such as exports/NAME/1")
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  from fastbert_tf.export import tflite  # pylint: disable=g-import-not-at-top
  content = tflite.convert(FLAGS.saved_model, FLAGS.quantize, FLAGS.variant)
  try:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "wb") as f:
      f.write(content)
  except OSError as e:
    sys.exit(f"error: {paths.disk_error_line(e, FLAGS.output) or e}")
  print(f"{FLAGS.output}: {len(content):,} bytes")


def run():
  """`python export/export_tflite.py`."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
