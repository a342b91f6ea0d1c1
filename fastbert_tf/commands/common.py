"""What every command shares: --help that lists the project's flags, the
`--verbose` flag and the one-line report of a user's error."""

import sys

from absl import app
from absl import flags

from fastbert_tf import errors
from fastbert_tf import tf_logs

# Modules whose flags a command's --help lists (absl lists only the main
# module's key flags; a console script's main module defines none).
PROJECT_FLAG_MODULES = (
    "fastbert_tf.commands.flags", "fastbert_tf.commands.common",
    "fastbert_tf.commands.server_flags", "fastbert_tf.commands.client",
    "fastbert_tf.commands.flops", "fastbert_tf.commands.predict",
    "fastbert_tf.commands.export", "fastbert_tf.commands.export_tflite",
    "fastbert_tf.commands.beam")


def project_flags_in_help(modules=PROJECT_FLAG_MODULES, flag_values=None):
  """Makes `--help` list the flags the project's modules define.

  absl's `--help` prints the key flags of the main module (sys.argv[0]):
  none when the flags live in fastbert_tf.commands.flags, or when a console
  script is the main module. Call after the flags are defined, before
  parsing.

  Args:
    modules: module names whose flags become key flags of the main module.
    flag_values: absl FlagValues (default flags.FLAGS).
  """
  fv = flag_values or flags.FLAGS
  main = sys.argv[0]
  for module in modules:
    for flag in fv.get_flags_for_module(module):
      fv.register_key_flag_for_module(main, flag)


def use_doc(doc):
  """Shows `doc` (the command's docstring) atop --help.

  absl prints the __main__ module's docstring: a console script's has none,
  and a `python -m fastbert_tf.X` shim's only points here.
  """
  main = sys.modules.get("__main__")
  if doc and main is not None:
    main.__doc__ = doc


def run_command(define_flags, main, doc, **run_kwargs):
  """A command's whole run(): quiet logs, define its flags, then absl's
  app.run(main) with the project's flags and `doc` in --help.

  Args:
    define_flags: callable defining the command's flags.
    main: callable(argv), the absl main.
    doc: str, the command's docstring.
    **run_kwargs: passed to absl.app.run (e.g. flags_parser).
  """
  tf_logs.quiet_tensorflow_logs()
  define_flags()
  project_flags_in_help()
  use_doc(doc)
  app.run(main, **run_kwargs)


def define_verbose_flag():
  """--verbose: show the traceback of a user's error (once per process)."""
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_boolean("verbose", False,
                         "Show the traceback of user errors too.")


def exit_on_user_error(run, *args, user_errors=(errors.UserError,), **kwargs):
  """Calls run(*args, **kwargs); a user error becomes `error: <line>` on
  stderr and exit status 1 (the full text and traceback under --verbose).

  Args:
    run: callable.
    *args: its positional arguments.
    user_errors: exception types to treat as the user's to fix.
    **kwargs: its keyword arguments.

  Returns:
    What run returns.
  """
  try:
    return run(*args, **kwargs)
  except user_errors as e:  # pylint: disable=catching-non-exception
    if flags.FLAGS.is_parsed() and "verbose" in flags.FLAGS and (
        flags.FLAGS.verbose):
      raise
    print(f"error: {errors.one_line(e)}", file=sys.stderr, flush=True)
    sys.exit(1)
