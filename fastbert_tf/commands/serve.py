r"""Serve exports over TF Serving's gRPC API: the local stand-in for
tensorflow_model_server (fastbert_tf/serving/server.py).

  fastbert-serve --model_base_path=exports/quickstart \
      --model_name=fastbert --port=8500
  (or python -m fastbert_tf.serving.server)

Prints `serving NAME version N at HOST:PORT` once it listens (scripts using
--port=0 read the port there) and stops on SIGINT or SIGTERM, giving
in-flight requests 5 s.
"""

import signal
import threading

from absl import app
from absl import flags
from absl import logging

from fastbert_tf import errors
from fastbert_tf.commands import common
from fastbert_tf.commands import server_flags
from fastbert_tf.serving import server as server_lib


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    kwargs = server_flags.server_kwargs(flags.FLAGS)
    server = server_lib.LocalServer(**kwargs)
  except (errors.UserError, ValueError) as e:
    raise SystemExit(f"error: {errors.one_line(e)}") from None
  except (FileNotFoundError, OSError) as e:
    raise SystemExit(f"error: {e}") from None
  stop = threading.Event()
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, frame: stop.set())
  server.start()
  # A parseable line on stdout, so scripts using --port=0 learn the port.
  print(f"serving {server.manager.name} version {max(server.manager.versions)}"
        f" at {server.address}", flush=True)
  while not stop.wait(1.0):  # wake up now and then: signals land in Python
    pass
  logging.info("Shutting down (up to 5 s for in-flight requests)")
  server.stop(grace=5.0)


def run():
  """fastbert-serve (and `python -m fastbert_tf.serving.server`)."""
  common.run_command(server_flags.define_flags, main, __doc__)


if __name__ == "__main__":
  run()
