"""Writing a servable version: `<export_base>/<version>/`, atomically, with
TF Serving warmup requests (warmup.py) in `assets.extra/`.

The SavedModel is written to `<export_base>/.tmp-<version>-<pid>@<host>-<id>`
and renamed into place. An export that dies (kill -9, a crash) leaves its
temporary directory behind; the next export removes those whose process is
gone. Two exports racing for the same automatic version both succeed: the
loser of the rename takes the next free number.
"""

import errno
import numbers
import os
import re
import socket
import time
import uuid

import tensorflow as tf
from absl import logging

from fastbert_tf.errors import ConfigError
from fastbert_tf.export import serving_module
from fastbert_tf.export import warmup
from fastbert_tf.inference import criteria
from fastbert_tf.inference import flops as flops_lib

# Where TF Serving looks for the warmup requests, inside a version.
WARMUP_FILE = warmup.WARMUP_FILE
_TMP = re.compile(r"^\.tmp-\d+-(\d+)@(.+)-[0-9a-f]{8}$")
# A temporary directory in another format (an older export, another host)
# is removed once nothing in it changed for this long.
STALE_SECONDS = 24 * 3600
_RENAME_TRIES = 20


def next_version(export_base):
  """1 + the largest numeric version under export_base (1 if none)."""
  if not tf.io.gfile.isdir(export_base):
    return 1
  versions = [int(d) for d in tf.io.gfile.listdir(export_base)
              if d.strip("/").isdigit()]
  return max(versions, default=0) + 1


# The largest version TF Serving reads: its versions are int64.
MAX_VERSION = 2**63 - 1


def export_saved_model(model, encoder, export_base, version=None,
                       speed=0.5, criterion=criteria.ExitCriterion(),
                       dispatch="cond", single_text_buckets=None):
  """Exports a servable SavedModel and returns its final directory.

  The SavedModel is written to a hidden temporary directory next to the
  target and renamed into place, so a TF Serving instance polling
  export_base never sees half a model. An existing version is never
  overwritten.

  Args:
    model: built FastBertClassifier.
    encoder: its TextEncoder (vocab, max_seq_length, text_pair).
    export_base: str, the model base path TF Serving watches.
    version: int or None (= next free version).
    speed: float, the speed used in the warmup requests.
    criterion: criteria.ExitCriterion compiled into the signatures.
    dispatch: "cond" (default; converts well to TFLite) or "tensor_array"
      (faster in TF / TF Serving at small batches): see early_exit.
    single_text_buckets: None, or bucket lengths (single_text.buckets_for)
      of the XLA path for requests of one text; the warmup requests then
      hold one text of each bucket's length per signature, so every
      bucket is compiled while the version loads (and a server without
      XLA refuses the version instead of failing requests).

  Returns:
    str, `<export_base>/<version>`.
  """
  if not 0.0 <= speed <= 1.0:  # False for NaN too
    # The graph would reject these warmup requests and TF Serving would
    # refuse to load the version.
    raise ConfigError(f"--warmup_speed={speed}: the warmup requests' speed "
                      "is outside [0, 1]; expected a speed in [0, 1]")
  auto = version is None
  if not auto and (isinstance(version, bool) or not isinstance(
      version, numbers.Integral) or not 0 <= version <= MAX_VERSION):
    # A server ignores a directory whose name is not an int64 >= 0.
    raise ConfigError(f"--version={version}: not a version a server loads; "
                      f"expected an integer in [0, {MAX_VERSION}]")
  if criterion.name == "topk_entropy" and criterion.top_k > (
      model.num_classes):
    raise ConfigError(f"--top_k={criterion.top_k}: more than the "
                      f"{model.num_classes} classes of the model; expected "
                      f"2 to {model.num_classes}")
  version = next_version(export_base) if auto else int(version)
  final = os.path.join(export_base, str(version))
  if not auto and tf.io.gfile.exists(final):
    raise FileExistsError(f"{final} already exists; versions are immutable, "
                          "pass another --version")
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  module = serving_module.ServingModule(model, encoder, table,
                                        text_pair=encoder.text_pair,
                                        criterion=criterion,
                                        dispatch=dispatch,
                                        single_text_buckets=single_text_buckets)
  tf.io.gfile.makedirs(export_base)
  remove_stale_tmp_dirs(export_base)
  tmp = os.path.join(export_base, _tmp_name(version))
  try:
    tf.saved_model.save(module, tmp, signatures=module.signatures())
    warmup.write_warmup_requests(os.path.join(tmp, WARMUP_FILE), encoder,
                                 speed, single_text_buckets)
    final = _rename_into_place(tmp, export_base, version, auto)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
  logging.info("Exported %s", final)
  return final


def _tmp_name(version):
  host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
  return f".tmp-{version}-{os.getpid()}@{host}-{uuid.uuid4().hex[:8]}"


def _rename_into_place(tmp, export_base, version, auto):
  """Renames tmp to <export_base>/<version>; returns the final path.

  A rename onto an existing non-empty directory fails atomically, so two
  exports can never mix their files. With an automatic version the loser
  takes the next free number; with an explicit one it is an error.
  """
  for _ in range(_RENAME_TRIES):
    final = os.path.join(export_base, str(version))
    try:
      if "://" in export_base:  # object stores: no atomic rename anyway
        tf.io.gfile.rename(tmp, final, overwrite=False)
      else:
        if os.path.exists(final):  # an empty directory would be replaced
          raise FileExistsError(errno.EEXIST, "exists", final)
        os.rename(tmp, final)
      return final
    except (OSError, tf.errors.AlreadyExistsError) as e:
      if isinstance(e, OSError) and e.errno not in (errno.EEXIST,
                                                    errno.ENOTEMPTY):
        raise
      if not auto:
        raise FileExistsError(
            f"{final} appeared while this export was writing (another "
            "export?); versions are immutable, pass another --version"
        ) from None
      version = max(version + 1, next_version(export_base))
  raise FileExistsError(f"no free version under {export_base} after "
                        f"{_RENAME_TRIES} tries (many exports at once?)")


def remove_stale_tmp_dirs(export_base, stale_seconds=STALE_SECONDS):
  """Removes temporary directories of exports that died.

  A `.tmp-<version>-<pid>@<host>-<id>` directory of this host whose process
  no longer runs is removed; one in another format, or of another host, only
  once untouched for `stale_seconds`. Returns the removed names.
  """
  removed = []
  host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
  for name in tf.io.gfile.listdir(export_base):
    name = name.strip("/")
    if not name.startswith(".tmp-"):
      continue
    path = os.path.join(export_base, name)
    match = _TMP.match(name)
    if match and match.group(2) == host:
      stale = not _alive(int(match.group(1)))
    else:
      stale = _age_seconds(path) > stale_seconds
    if stale:
      logging.warning("Removing %s, left by an export that died", path)
      tf.io.gfile.rmtree(path)
      removed.append(name)
  return removed


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's process
  return True


def _age_seconds(path):
  newest = 0
  for root, _, files in tf.io.gfile.walk(path):
    for f in files + [""]:
      newest = max(newest, tf.io.gfile.stat(
          os.path.join(root, f) if f else root).mtime_nsec)
  return time.time() - newest / 1e9
