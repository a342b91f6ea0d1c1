"""Errors a user can fix, and how the command-line tools report them.

Every error raised for bad input (a data file, a checkpoint, a model
directory, a flag) derives from `UserError` and says, in its first line,
which file or flag is wrong, what was found and what was expected. The
entry points print that line (`error: ...`) and exit with status 1, without
a traceback; `--verbose` re-raises to show it.
"""

import sys

from absl import flags


class UserError(Exception):
  """Bad input the user can fix; the message names the file or flag."""


class ConfigError(UserError, ValueError):
  """A flag, preset or config file that cannot work."""


class ModelDirError(UserError, ValueError):
  """A model directory that is missing files, does not belong together, or
  holds something a run must not overwrite."""


class DamagedRunError(ModelDirError):
  """An unfinished run whose files (staged model, checkpoints) cannot be
  read: resuming is impossible; --overwrite discards the run."""


class PathError(UserError, ValueError):
  """A path argument that cannot work: missing, of the wrong kind, not
  writable, the same file as another argument, inside a finished model, or
  on a disk that filled up."""


def define_verbose_flag():
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_boolean("verbose", False,
                         "Show the traceback of user errors too.")


def one_line(error):
  """The first line of an error's message, with a count of the rest."""
  lines = str(error).strip().splitlines() or [type(error).__name__]
  more = len(lines) - 1
  return lines[0] + (f" ({more} more lines: --verbose)" if more else "")


def exit_on_user_error(run, *args, user_errors=(UserError,), **kwargs):
  """Calls run(*args, **kwargs); a user error becomes `error: <line>` on
  stderr and exit status 1 (the full text and traceback under --verbose).

  Args:
    run: callable.
    user_errors: exception types to treat as the user's to fix.
  """
  try:
    return run(*args, **kwargs)
  except user_errors as e:  # pylint: disable=catching-non-exception
    if flags.FLAGS.is_parsed() and "verbose" in flags.FLAGS and (
        flags.FLAGS.verbose):
      raise
    print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
    sys.exit(1)
