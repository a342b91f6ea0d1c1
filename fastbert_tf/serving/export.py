"""Writing a servable version: `<export_base>/<version>/`, atomically, with
TF Serving warmup requests in `assets.extra/`.

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
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from fastbert_tf.errors import ConfigError
from fastbert_tf.inference import criteria
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.serving import export_module

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Short texts in both of the project's languages; warmup only has to trace
# every signature once, not to be representative.
WARMUP_TEXTS = ("This book is wonderful.", "质量太差了，不推荐。")
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
  module = export_module.ServingModule(model, encoder, table,
                                       text_pair=encoder.text_pair,
                                       criterion=criterion, dispatch=dispatch,
                                       single_text_buckets=single_text_buckets)
  tf.io.gfile.makedirs(export_base)
  remove_stale_tmp_dirs(export_base)
  tmp = os.path.join(export_base, _tmp_name(version))
  try:
    tf.saved_model.save(module, tmp, signatures=module.signatures())
    write_warmup_requests(os.path.join(tmp, WARMUP_FILE), encoder, speed,
                          single_text_buckets)
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


def warmup_requests(encoder, speed, single_text_buckets=None):
  """PredictRequests for TF Serving's warmup: one per signature with two
  texts; with single_text_buckets, also one text of each bucket's length
  per signature (batch 1 takes the XLA path, compiled per bucket)."""
  batches = [list(WARMUP_TEXTS)]
  if single_text_buckets:
    batches += [[t] for t in _texts_per_bucket(encoder, single_text_buckets)]
  requests = []
  for texts in batches:
    requests += _requests_for(encoder, texts, speed)
  if single_text_buckets:  # predict_ids at exactly each bucket's length
    long = tf.constant([_long_text(encoder)])
    ids = encoder(long, long if encoder.text_pair else None)
    for length in single_text_buckets:
      cut = {k: v[:, :length] for k, v in ids.items()}
      if cut["token_ids"].shape[1] == length:
        requests.append(_request(export_module.SIGNATURE_IDS, cut, speed, 1))
  return requests


def _requests_for(encoder, texts, speed):
  """One request per signature for `texts`."""
  tensor = tf.constant(texts)
  text_inputs = {"text": tensor}
  if encoder.text_pair:
    text_inputs["text_b"] = tensor
  ids = encoder(tensor, tensor if encoder.text_pair else None)
  return [_request(signature, inputs, speed, len(texts))
          for signature, inputs in (
              (export_module.DEFAULT_SIGNATURE, text_inputs),
              (export_module.SIGNATURE_TEXT, text_inputs),
              (export_module.SIGNATURE_IDS, ids))]


def _request(signature, inputs, speed, batch):
  """A PredictRequest of `inputs` with `speed` for each of `batch` rows."""
  request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(signature_name=signature))
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  # float32 [batch]: the form TF Serving's batching session needs (a
  # scalar there fails the warmup, and with it the version's load).
  request.inputs["speed"].CopyFrom(tf.make_tensor_proto(
      [speed] * batch, dtype=tf.float32))
  return request


def _long_text(encoder):
  """A warmup text that fills max_seq_length."""
  return " ".join(WARMUP_TEXTS) * encoder.max_seq_length


def _texts_per_bucket(encoder, buckets):
  """For each bucket length b (ascending), a prefix of _long_text whose
  tokenized length lies in (previous bucket, b], where one exists."""
  text = _long_text(encoder)

  def length(n):
    prefix = tf.constant([text[:n]])
    return int(encoder(prefix, prefix if encoder.text_pair else None)
               ["token_ids"].shape[1])

  texts, previous = [], 0
  for bucket in sorted(buckets):
    # The shortest prefix longer than the previous bucket (length grows
    # with the prefix): bisection, a few dozen tokenizer calls in all.
    lo, hi = 1, len(text)
    while lo < hi:
      mid = (lo + hi) // 2
      lo, hi = (mid + 1, hi) if length(mid) <= previous else (lo, mid)
    if previous < length(lo) <= bucket:
      texts.append(text[:lo])
    else:  # e.g. a pair model's lengths grow two tokens at a time
      logging.warning(
          "No warmup text of %d-%d tokens: bucket %d compiles on its first "
          "text signature request", previous + 1, bucket, bucket)
    previous = bucket
  return texts


def write_warmup_requests(path, encoder, speed, single_text_buckets=None):
  """Writes the PredictionLog TFRecord TF Serving replays at load time."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for request in warmup_requests(encoder, speed, single_text_buckets):
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
