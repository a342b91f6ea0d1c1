"""Directories that refuse writes, for the path and disk fault tests.

`read_only_dir` mounts a read-only tmpfs when running as root (root ignores
permission bits) and otherwise drops the write bits; `small_disk` mounts a
tmpfs of a few hundred KiB and needs root: both say why when they cannot,
so a test can skip with that reason.
"""

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import unittest


@functools.lru_cache(maxsize=None)
def can_mount():
  """None when tmpfs mounts work here, else the reason they do not (not
  root; or root in a sandbox that forbids mounts, as Bazel's may)."""
  if os.geteuid() != 0:
    return "mounting a tmpfs needs root"
  probe = tempfile.mkdtemp(prefix="fastbert_mount_probe_")
  try:
    _mount(probe, "size=64k")
  except OSError as e:
    return f"tmpfs mounts fail here: {e}"
  finally:
    _umount(probe)
    shutil.rmtree(probe, ignore_errors=True)
  return None


def _mount(path, options):
  os.makedirs(path, exist_ok=True)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                           path], capture_output=True, text=True, check=False)
  if result.returncode:
    raise OSError(f"mount {path}: {result.stderr.strip()}")


def _umount(path):
  subprocess.run(["umount", "-l", path], capture_output=True, check=False)


@contextlib.contextmanager
def small_disk(path, size="300k"):
  """A tmpfs of `size` at `path` (root only; see can_mount)."""
  _mount(path, f"size={size}")
  try:
    yield path
  finally:
    _umount(path)


@contextlib.contextmanager
def read_only_dir(path, files=None):
  """`path` as a read-only directory holding `files` ({name: bytes}).

  As root: a tmpfs filled, then remounted read-only (EROFS for everyone).
  Otherwise: mode 0o555 (EACCES).
  """
  files = files or {}
  if os.geteuid() == 0 and can_mount() is not None:
    # Root writes through permission bits: without a read-only mount there
    # is no read-only directory to test against.
    raise unittest.SkipTest(f"no read-only directory for root: {can_mount()}")
  if can_mount() is None:
    _mount(path, "size=4m")
    try:
      _fill(path, files)
      subprocess.run(["mount", "-o", "remount,ro", path], check=True)
      yield path
    finally:
      _umount(path)
  else:
    os.makedirs(path, exist_ok=True)
    _fill(path, files)
    os.chmod(path, 0o555)
    try:
      yield path
    finally:
      os.chmod(path, 0o755)


def _fill(path, files):
  for name, content in files.items():
    with open(os.path.join(path, name), "wb") as f:
      f.write(content)
