"""The paths a user gives, checked before any work; a full disk, named.

Every command lists its path arguments as `Arg(flag, path, role)` and calls
`check_paths` before it loads a model or reads data, so that a wrong path
costs a second, not a training, and nothing is lost:

>>> check_paths([Arg("--input", "x.jsonl", READ_FILE),
...              Arg("--output", "./x.jsonl", WRITE_FILE)])
PathError: --output=./x.jsonl: the same file as --input=x.jsonl; expected ...

Roles:
  READ_FILE / READ_DIR / READ_ANY: must exist (as a file, a directory, either).
  WRITE_FILE: a file written (whole) by the command; it may exist (a file,
    writable); missing directories above it are created by the command.
  WRITE_DIR: a directory the command writes into (or creates).
  MODEL_DIR: training's --model_dir: a WRITE_DIR that may already hold the
    finished model this run replaces or extends.

Rules beyond each role (`check_paths`): no written path is the same file as
another argument (resolved paths, then inode), and no written path is a
finished model directory or lies inside one, unless that model is one of
the command's own (`own_model_dirs`: predict's or sweep's --model_dir may
take answers or a sweep in a subdirectory, never in its own files).

This module imports no TensorFlow: the predict command checks its paths
before paying for that import.
"""

import collections
import contextlib
import errno
import json
import os
import re
import shutil

from fastbert_tf.errors import ConfigError
from fastbert_tf.errors import PathError

READ_FILE, READ_DIR, READ_ANY = "read_file", "read_dir", "read_any"
WRITE_FILE, WRITE_DIR, MODEL_DIR = "write_file", "write_dir", "model_dir"
_WRITES = (WRITE_FILE, WRITE_DIR, MODEL_DIR)
# The files that mark a finished model directory (models.saving's names;
# not imported from there, which imports TensorFlow).
_MODEL_MARKERS = ("MANIFEST.json", "config.json")
# errnos that mean "this place cannot take the bytes", not a bug.
_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device",
                errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system",
                errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


class Arg(collections.namedtuple("Arg", "flag path role")):
  """One path argument: `flag` as the user typed it ("--output"), `path`
  (str, "" or None = not given, "-" = a standard stream), `role`."""

  def __str__(self):
    return f"{self.flag}={self.path}"


def check_paths(args, own_model_dirs=()):
  """Checks every path argument of one command; writes nothing.

  Args:
    args: iterable of Arg; those without a path, or "-", are skipped.
    own_model_dirs: paths of the models the command serves (their
      subdirectories may take its output).

  Raises:
    PathError: the first argument that cannot work, as `--flag=path: what
      is wrong; expected what`.
  """
  args = [a for a in args if a.path and a.path != "-"]
  for arg in args:
    _check_one(arg)
  for i, arg in enumerate(args):
    for other in args[:i]:
      if arg.role in _WRITES or other.role in _WRITES:
        if same_path(arg.path, other.path):
          raise PathError(
              f"{arg}: the same {'file' if os.path.isfile(arg.path) else 'path'}"
              f" as {other}; expected a path of its own (one would "
              "overwrite the other)")
  own = {os.path.realpath(p) for p in own_model_dirs if p}
  for arg in args:
    if arg.role in _WRITES:
      _check_not_in_a_model(arg, own)


def same_path(a, b):
  """Whether two spellings name one file: resolved paths, then inode."""
  if os.path.realpath(a) == os.path.realpath(b):
    return True
  try:
    return os.path.samefile(a, b)
  except OSError:
    return False


def _check_one(arg):
  path = arg.path
  if arg.role in (READ_FILE, READ_DIR, READ_ANY):
    if not os.path.exists(path):
      raise PathError(f"{arg}: does not exist; expected an existing "
                      f"{_KIND[arg.role]}")
    if arg.role == READ_FILE and os.path.isdir(path):
      raise PathError(f"{arg}: is a directory; expected a file")
    if arg.role == READ_DIR and not os.path.isdir(path):
      raise PathError(f"{arg}: is a file; expected a directory")
    if not os.access(path, os.R_OK):
      raise PathError(f"{arg}: not readable; expected read permission")
    return
  if os.path.exists(path):
    is_dir = os.path.isdir(path)
    if arg.role == WRITE_FILE and is_dir:
      raise PathError(f"{arg}: is a directory; expected a file to write")
    if arg.role != WRITE_FILE and not is_dir:
      raise PathError(f"{arg}: is a file; expected a directory (new or "
                      "existing)")
    if not _writable(path if is_dir else os.path.dirname(
        os.path.abspath(path))) or not os.access(path, os.W_OK):
      raise PathError(f"{arg}: not writable (read-only or no permission); "
                      "expected a writable place")
    return
  parent = _nearest_existing(path)
  if not os.path.isdir(parent):
    raise PathError(f"{arg}: {parent} is a file; expected a directory "
                    "there")
  if not _writable(parent):
    raise PathError(f"{arg}: cannot be created: {parent} is not writable "
                    "(read-only or no permission); expected a writable "
                    "directory")


_KIND = {READ_FILE: "file", READ_DIR: "directory", READ_ANY: "path"}


def _writable(directory):
  return os.access(directory, os.W_OK | os.X_OK)


def _nearest_existing(path):
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def is_finished_model(directory):
  return any(os.path.isfile(os.path.join(directory, m))
             for m in _MODEL_MARKERS)


def _check_not_in_a_model(arg, own):
  real = os.path.realpath(arg.path)
  if arg.role != MODEL_DIR and os.path.isdir(real) and is_finished_model(
      real):
    raise PathError(f"{arg}: is a finished model directory; expected a "
                    "directory of its own (writing here would change the "
                    "model)")
  child, parent = real, os.path.dirname(real)
  while parent != child:
    if is_finished_model(parent):
      if parent not in own:
        raise PathError(f"{arg}: lies inside the finished model directory "
                        f"{parent}; expected a path outside it")
      if os.path.dirname(real) == parent and arg.role == WRITE_FILE and (
          os.path.basename(real) in _model_files(parent)):
        raise PathError(f"{arg}: is one of the model's own files; "
                        "expected another file name")
      return
    child, parent = parent, os.path.dirname(parent)


def _model_files(directory):
  try:
    with open(os.path.join(directory, "MANIFEST.json"), encoding="utf-8") as f:
      return set(json.load(f).get("files", {}))
  except (OSError, ValueError, AttributeError):
    return set(_MODEL_MARKERS)


def check_vocab(path, flag="--vocab"):
  """A vocab.txt lists each token once (a repeat breaks the id lookup).

  Args:
    path: str, the vocab.txt.
    flag: str, where it comes from ("--vocab", "--init_checkpoint").

  Raises:
    ConfigError: `path:LINE: token ... repeats line N (flag)`.
  """
  seen = {}
  with open(path, encoding="utf-8", errors="replace") as f:
    for number, line in enumerate(f, 1):
      token = line.rstrip("\r\n")
      if token and token in seen:
        raise ConfigError(
            f"{path}:{number}: token {token!r} repeats line {seen[token]} "
            f"({flag}); expected each token once")
      seen.setdefault(token, number)


def ensure_free_space(directory, nbytes, what):
  """Refuses to start a write that the disk cannot take (some writers,
  h5py's, crash the process when the disk fills under them).

  Raises:
    PathError: naming the directory, the bytes needed and those free.
  """
  free = shutil.disk_usage(_nearest_existing(directory)).free
  if free < nbytes:
    raise PathError(f"{directory}: no space left for {what} ({nbytes:,} "
                    f"bytes needed, {free:,} free); expected a disk with "
                    "room (free some, or choose another directory)")


_ERRNO_IN_TEXT = re.compile(r"errno = (\d+)|\[Errno (\d+)\]")


def disk_error_line(error, where):
  """A one-line message for an error that means the disk refused a write
  (full, quota, read-only, permission), or None for any other error.

  Args:
    error: an exception: OSError, TensorFlow's ResourceExhaustedError /
      PermissionDeniedError, or h5py's RuntimeError quoting an errno.
    where: str, the directory the command was writing into.
  """
  code = getattr(error, "errno", None) if isinstance(error, OSError) else None
  text = str(error)
  if code is None:
    match = _ERRNO_IN_TEXT.search(text)
    if match:
      code = int(match.group(1) or match.group(2))
    elif "No space left" in text or "out of space" in text.lower():
      code = errno.ENOSPC
    elif type(error).__name__ == "PermissionDeniedError":
      code = errno.EACCES
  if code not in _DISK_ERRNOS:
    return None
  path = getattr(error, "filename", None) or where
  return (f"{path}: {_DISK_ERRNOS[code]} while writing; expected a "
          f"writable disk with room (nothing was published; the previous "
          f"model, if any, is intact)")


@contextlib.contextmanager
def disk_errors(where):
  """Turns a write the disk refused into a PathError naming the path."""
  try:
    yield
  except PathError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    line = disk_error_line(e, where)
    if line is None:
      raise
    raise PathError(line) from None
