"""Versions like TF Serving: poll the model base path, load new versions in
the background, serve the newest that loads and warms up, keep the previous
one when a newer one is broken or half copied, unload old ones (latest-N
policy), and resolve requests by version number or version label.

Differences from TF Serving, on purpose: a version that failed to load is
tried again when its directory changes (a half-copied version that is
completed later gets served, without TF Serving's retry count), and a
labelled version stays loaded beside the latest N (TF Serving needs a
`specific` version policy for that).
"""

import ctypes
import gc
import os
import threading

import grpc
import tensorflow as tf
from absl import logging

from fastbert_tf.serving import protos

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def release_memory():
  """Collects garbage and hands freed heap pages back to the OS: glibc
  keeps them in per-thread arenas otherwise, and a server with many
  request threads would never shrink after a burst or an unload."""
  gc.collect()
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):  # not glibc: nothing to do
    pass


def parse_labels(text):
  """"stable=1,canary=2" -> {"stable": 1, "canary": 2}.

  Raises:
    ValueError: naming the malformed entry.
  """
  labels = {}
  for item in filter(None, (t.strip() for t in (text or "").split(","))):
    label, sep, version = item.partition("=")
    if not sep or not label.strip() or not version.strip().isdigit():
      raise ValueError(f"--version_labels entry {item!r} must be LABEL=N "
                       "with N a version number, e.g. stable=1,canary=2")
    labels[label.strip()] = int(version)
  return labels


def on_disk(base_path):
  """{version: path} of numeric directories under base_path (exports in
  progress are hidden `.tmp-*` directories and never match)."""
  if not tf.io.gfile.isdir(base_path):
    raise FileNotFoundError(f"model base path {base_path} is not a directory")
  return {int(d.strip("/")): os.path.join(base_path, d.strip("/"))
          for d in tf.io.gfile.listdir(base_path) if d.strip("/").isdigit()}


def fingerprint(path):
  """What changes when files are added to or grow in a version directory:
  a failed version is retried only when this changes."""
  entries = []
  for root, dirs, files in tf.io.gfile.walk(path):
    entries += [(os.path.relpath(os.path.join(root, d), path), -1, 0)
                for d in dirs]
    for f in files:
      stat = tf.io.gfile.stat(os.path.join(root, f))
      entries.append((os.path.relpath(os.path.join(root, f), path),
                      stat.length, stat.mtime_nsec))
  return tuple(sorted(entries))


class VersionManager:
  """The loaded versions of one model and the thread that keeps them fresh.

  Args:
    base_path: str, the model base path (`<base>/<version>/saved_model.pb`).
    name: str, the model name requests must use.
    load: callable(version, path) -> a loaded, warmed-up servable (with
      `.version` and `.close()`); raises when the version is unusable.
    poll_wait_seconds: float; > 0 polls that often, 0 looks once at start-up
      (TF Serving's --file_system_poll_wait_seconds).
    max_versions: int, how many of the newest good versions stay loaded.
    labels: {str: int}, version labels (kept loaded as well).
  """

  def __init__(self, base_path, name, load, poll_wait_seconds=1.0,
               max_versions=1, labels=None):
    if max_versions < 1:
      raise ValueError(f"--max_versions={max_versions}: no version would "
                       "stay loaded; expected an integer >= 1")
    self.base_path = base_path
    self.name = name
    self._load = load
    self._poll_wait = float(poll_wait_seconds)
    self._max_versions = int(max_versions)
    self.labels = dict(labels or {})
    self._servables = {}  # version -> servable; replaced, never mutated
    self._failed = {}  # version -> fingerprint of the failed attempt
    self._lock = threading.Lock()
    self._poll_lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = None

  def start(self):
    """Loads the newest good version(s) now; then polls in the background.

    Raises:
      FileNotFoundError: no version under base_path loads.
    """
    self.poll()
    if not self._servables:
      failed = sorted(self._failed)
      raise FileNotFoundError(
          f"no servable version under {self.base_path}: expected "
          "<base>/<N>/saved_model.pb with N a number" +
          (f"; versions {failed} failed to load (see the log)"
           if failed else ""))
    if self._poll_wait > 0:
      self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                      name=f"poll-{self.name}")
      self._thread.start()
    return self

  def stop(self):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    with self._lock:
      servables, self._servables = self._servables, {}
    for servable in servables.values():
      servable.close()

  @property
  def versions(self):
    """Sorted version numbers loaded now."""
    return sorted(self._servables)

  def newest(self):
    servables = self._servables
    return servables[max(servables)]

  def resolve(self, model_spec):
    """The servable a ModelSpec asks for.

    Raises:
      ServingError: NOT_FOUND for another model or a version not loaded,
        INVALID_ARGUMENT for an unknown label (TF Serving's codes).
    """
    if model_spec.name != self.name:
      raise protos.ServingError(
          NOT_FOUND, f"Servable not found for request: model "
          f"'{model_spec.name}' (this server serves '{self.name}')")
    servables = self._servables
    label = ""
    if model_spec.HasField("version"):
      version = model_spec.version.value
    elif model_spec.version_label:
      label = model_spec.version_label
      if label not in self.labels:
        raise protos.ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Unrecognized servable version label: {label} (labels: "
            f"{self.labels or 'none; see --version_labels'})")
      version = self.labels[label]
    else:
      return servables[max(servables)]
    if version not in servables:
      raise protos.ServingError(
          NOT_FOUND, f"Servable not found for request: Specific({self.name},"
          f" {version})" + (f" (label '{label}')" if label else "") +
          f"; loaded versions are {sorted(servables)}")
    return servables[version]

  def poll(self):
    """One look at the base path: load what the policy wants, unload the
    rest. Never raises; failures are logged and remembered."""
    with self._poll_lock:
      try:
        paths = on_disk(self.base_path)
      except (FileNotFoundError, tf.errors.OpError) as e:
        logging.warning("cannot list %s: %s", self.base_path, e)
        return
      for version in sorted(paths, reverse=True):
        if self._wanted(version) and version not in self._servables:
          self._try_load(version, paths[version])
      self._unload_unwanted(paths)

  def _wanted(self, version):
    if version in self.labels.values():
      return True
    newest = sorted(self._servables, reverse=True)[:self._max_versions]
    return len(newest) < self._max_versions or version > newest[-1]

  def _try_load(self, version, path):
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
      return  # still being copied, or not a SavedModel: look again later
    try:
      print_ = fingerprint(path)
    except tf.errors.OpError:
      return  # disappeared while we looked
    if self._failed.get(version) == print_:
      return
    try:
      servable = self._load(version, path)
    except Exception as e:  # pylint: disable=broad-except
      self._failed[version] = print_
      serving = self.versions
      logging.warning(
          "Version %d of model %s at %s failed to load or warm up; %s: "
          "%s: %s", version, self.name, path,
          f"still serving version(s) {serving}" if serving else
          "no version served yet", type(e).__name__,
          str(e).strip().splitlines()[0] if str(e).strip() else "")
      return
    self._failed.pop(version, None)
    with self._lock:
      self._servables = {**self._servables, version: servable}
    logging.info("Serving version %d of model %s from %s", version,
                 self.name, path)

  def _unload_unwanted(self, paths):
    keep = set(sorted((v for v in self._servables if v in paths),
                      reverse=True)[:self._max_versions])
    keep |= {v for v in self.labels.values() if v in paths}
    if not keep & set(self._servables):
      # Every loaded version is gone from disk: keep serving the newest
      # rather than nothing (TF Serving would unload it).
      keep = {max(self._servables)} if self._servables else set()
    gone = set(self._servables) - keep
    if not gone:
      return
    servables = self._servables
    with self._lock:
      self._servables = {v: s for v, s in self._servables.items()
                         if v in keep}
    for version in sorted(gone):
      logging.info("Unloading version %d of model %s", version, self.name)
      # In-flight requests hold their own reference and finish; the graph
      # and weights go with the last of them.
      servables[version].close()
    del servables
    release_memory()

  def _poll_loop(self):
    while not self._stop.wait(self._poll_wait):
      self.poll()
