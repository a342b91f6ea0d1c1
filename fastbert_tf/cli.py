"""Console scripts (setup.py entry points) and what every entry point shares.

  fastbert-train    python -m fastbert_tf.train
  fastbert-sweep    python -m fastbert_tf.sweep
  fastbert-predict  python -m fastbert_tf.predict (its own run())
  fastbert-export   python export/export_saved_model.py
  fastbert-serve    python -m fastbert_tf.serving.server
  fastbert-flops    python -m fastbert_tf.flops
  fastbert-beam     python -m fastbert_tf.beam.run (its own run())

Each quiets TensorFlow's start-up noise on machines without a GPU driver
(`quiet_tensorflow_logs`) and makes `--help` list the project's own flags
(`project_flags_in_help`) before running the module's absl main.
"""

import os
import sys

# TensorFlow's C++ side logs `E0000 ... cuda_platform.cc ... failed call to
# cuInit: ... CUDA error` when it first looks for a GPU on a machine without
# the NVIDIA driver: an ERROR line that means "no GPU, running on the CPU".
_NVIDIA_DRIVER = ("/proc/driver/nvidia/version", "/dev/nvidia0")


def quiet_tensorflow_logs(environ=None):
  """Hides TensorFlow's C++ INFO/WARNING logs, and on a machine without an
  NVIDIA driver its C++ ERROR logs too (the misleading cuInit line).

  Call before TensorFlow is imported. A TF_CPP_MIN_LOG_LEVEL already set
  (e.g. `TF_CPP_MIN_LOG_LEVEL=0` to see everything) is left alone. Python
  exceptions are unaffected: TensorFlow's real errors still surface as
  exceptions with their messages.

  Returns:
    the TF_CPP_MIN_LOG_LEVEL now in effect (str).
  """
  environ = os.environ if environ is None else environ
  if "TF_CPP_MIN_LOG_LEVEL" not in environ:
    has_driver = any(os.path.exists(p) for p in _NVIDIA_DRIVER)
    environ["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_driver else "3"
  return environ["TF_CPP_MIN_LOG_LEVEL"]


PROJECT_FLAG_MODULES = ("fastbert_tf.flags", "fastbert_tf.errors",
                        "fastbert_tf.serving.server_flags",
                        "fastbert_tf.serving.client", "fastbert_tf.flops",
                        "fastbert_tf.predict", "fastbert_tf.beam.run")


def project_flags_in_help(modules=PROJECT_FLAG_MODULES, flag_values=None):
  """Makes `--help` list the flags the project's modules define.

  absl's `--help` prints the key flags of the main module (sys.argv[0]):
  none when the flags live in fastbert_tf.flags, or when a console script
  is the main module. Call after the flags are defined, before parsing.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flag_values or flags.FLAGS
  main = sys.argv[0]
  for module in modules:
    for flag in fv.get_flags_for_module(module):
      fv.register_key_flag_for_module(main, flag)


def _run(define, main, doc=None):
  from absl import app  # pylint: disable=g-import-not-at-top
  define()
  project_flags_in_help()
  use_doc(doc)
  app.run(main)


def use_doc(doc):
  """Shows `doc` (the module's docstring) atop --help, as `python -m` does;
  a console script's own __main__ has none."""
  main = sys.modules.get("__main__")
  if doc and main is not None and not getattr(main, "__doc__", None):
    main.__doc__ = doc


def _delegate(module):
  """Runs module.run() (which defines its flags, then calls absl's app.run)
  with the project's flags in --help and the module's docstring atop it.

  The hook goes into absl.app.run for this one call, so the module's own
  run() (its flags, logging set-up) is used unchanged.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  original = app.run

  def run_with_help(main, *args, **kwargs):
    app.run = original
    project_flags_in_help()
    use_doc(module.__doc__)
    return original(main, *args, **kwargs)

  app.run = run_with_help
  try:
    module.run()
  finally:
    app.run = original


def train():
  quiet_tensorflow_logs()
  from fastbert_tf import train as module  # pylint: disable=g-import-not-at-top
  _delegate(module)


def sweep():
  quiet_tensorflow_logs()
  from fastbert_tf import sweep as module  # pylint: disable=g-import-not-at-top
  _delegate(module)


def flops():
  quiet_tensorflow_logs()
  from fastbert_tf import flops as module  # pylint: disable=g-import-not-at-top
  _delegate(module)


def serve():
  quiet_tensorflow_logs()
  from fastbert_tf.serving import server  # pylint: disable=g-import-not-at-top
  from fastbert_tf.serving import server_flags  # pylint: disable=g-import-not-at-top
  _run(server_flags.define_flags, server.main, server.__doc__)


EXPORT_SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export",
    "export_saved_model.py")


def export():
  """fastbert-export: export/export_saved_model.py, which lives beside the
  package in a source checkout (pip install -e .)."""
  quiet_tensorflow_logs()
  import runpy  # pylint: disable=g-import-not-at-top
  if not os.path.exists(EXPORT_SCRIPT):
    sys.exit(f"error: fastbert-export runs {EXPORT_SCRIPT}, which this "
             "installation lacks; install from a source checkout with "
             "`pip install -e .`")
  # Not as __main__: its flags get defined, its app.run is ours.
  script = runpy.run_path(EXPORT_SCRIPT, run_name="fastbert_export")
  modules = PROJECT_FLAG_MODULES + ("fastbert_export",)
  from absl import app  # pylint: disable=g-import-not-at-top
  project_flags_in_help(modules)
  use_doc(script["__doc__"])
  app.run(script["main"])
