r"""Classify texts with a served export: one gRPC request, no TensorFlow.

  python -m fastbert_tf.serving.client --server=127.0.0.1:8500 \
      --model_name=fastbert --speed=0.5 "some text" "another text"

prints one line per input: label, probabilities, exit layer, uncertainty.
`--speed` is required (the SavedModel has no default either). A failure
(server unreachable, deadline, bad request) is one line on stderr and exit
status 1. The client itself is fastbert_tf/serving/client.py.
"""

import sys

from absl import app
from absl import flags

from fastbert_tf.commands import common
from fastbert_tf.serving import client as client_lib


def define_flags():
  """Every flag of the command."""
  flags.DEFINE_string("server", "127.0.0.1:8500", "HOST:PORT of the server.")
  flags.DEFINE_string("model_name", "default", "Served model name.")
  flags.DEFINE_float("speed", None, "Early-exit speed in [0, 1] (required: "
                     "0 = the full model, higher = earlier exits).")
  flags.DEFINE_string("signature", client_lib.DEFAULT_SIGNATURE,
                      "Text signature: serving_default or predict_text.")
  flags.DEFINE_multi_string("text_b", None,
                            "Second segment per text, for pair models "
                            "(repeat once per text, in order).")
  flags.DEFINE_float("timeout", 10.0, "Seconds before giving up.")
  flags.DEFINE_integer("version", None, "Model version (default: newest).")
  flags.DEFINE_string("version_label", None, "Version label, e.g. stable.")
  flags.mark_flag_as_required("speed")


def main(argv):
  flag, texts = flags.FLAGS, argv[1:]
  if not texts:
    raise app.UsageError("give at least one text to classify")
  if flag.text_b is not None and len(flag.text_b) != len(texts):
    raise app.UsageError(f"--text_b given {len(flag.text_b)} times for "
                         f"{len(texts)} texts")
  try:
    with client_lib.FastBertClient(flag.server, flag.model_name,
                                   flag.timeout) as client:
      outputs = client.predict(texts, flag.speed, flag.signature,
                               flag.text_b, flag.version, flag.version_label)
  except client_lib.ServingError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  for i, text in enumerate(texts):
    print(client_lib.format_result(outputs, i, text))
  return 0


def run():
  """`python -m fastbert_tf.serving.client`."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
