"""Errors a user can fix, and how the command-line tools report them.

Every error raised for bad input (a data file, a checkpoint, a model
directory, a flag) derives from `UserError` and says, in its first line,
which file or flag is wrong, what was found and what was expected. The
entry points print that line (`error: ...`) and exit with status 1, without
a traceback; `--verbose` re-raises to show it (commands/common.py).
"""


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


def one_line(error):
  """The first line of an error's message, with a count of the rest."""
  lines = str(error).strip().splitlines() or [type(error).__name__]
  more = len(lines) - 1
  return lines[0] + (f" ({more} more lines: --verbose)" if more else "")
