"""A training run's own corner of the model directory: `<model_dir>/.run/`.

  .run/run.json          the run: id, fingerprint (models.saving and
                         TrainConfig.fingerprint), phases finished
  .run/staged/           the new model's files as they are made (learned
                         vocabulary, each finished phase's model, results)
  .run/<phase>/          that phase's resumable checkpoints (training.loop)
  .run/publish.json      the manifest being published (restartable)
  .run/lock              held (fcntl.flock) by the live run: a second job
                         into the same model_dir is refused while it runs;
                         the OS releases it when the process dies, kill -9
                         included, so no stale lock is left behind

Nothing but the lock is written into `model_dir` before `begin()`, which the
runner calls only after the data, labels, checkpoint and architecture have
been checked; a job that stops before `begin()` removes the lock again. The
published model (if any) stays untouched until `publish()`.
"""

import contextlib
import fcntl
import json
import os
import shutil

from absl import logging

from fastbert_tf.errors import ModelDirError
from fastbert_tf.models import saving
from fastbert_tf.training import publish as publish_lib

RUN_FILE = "run.json"
LOCK_FILE = "lock"


class RunDir:
  """Decides whether a job starts, resumes or must stop, and keeps its files.

  Args:
    model_dir: str.

  Example:

  >>> run = RunDir("runs/x")
  >>> mode = run.open(cfg.fingerprint(), overwrite=False)   # fresh / resume
  >>> run.begin()
  >>> ...; run.mark_done("finetune"); ...
  >>> run.publish({"phases": ["finetune", "distill"]})
  """

  def __init__(self, model_dir):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, saving.RUN_DIR)
    self.staged = os.path.join(self.path, "staged")
    self.state = None

  @contextlib.contextmanager
  def locked(self):
    """Holds `.run/lock` for the job's duration.

    Raises:
      ModelDirError: another live job holds it (its pid named).
    """
    made = [d for d in (self.model_dir, self.path) if not os.path.isdir(d)]
    os.makedirs(self.path, exist_ok=True)
    path = os.path.join(self.path, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      pid = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
      os.close(fd)
      raise ModelDirError(
          f"{self.model_dir}: another training (pid {pid}) is running in "
          "it; expected a --model_dir no live run uses (wait for it to end, "
          "or choose another)") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode("ascii"))
    try:
      yield
    finally:
      if self.state is None:  # never began: leave model_dir as it was
        _remove(path)
        for directory in [self.path] + [d for d in made
                                        if d == self.model_dir]:
          with contextlib.suppress(OSError):
            os.rmdir(directory)
      os.close(fd)

  def discard(self):
    """Removes an unfinished run's files (the lock stays held)."""
    if os.path.isdir(self.path):
      for name in os.listdir(self.path):
        if name != LOCK_FILE:
          child = os.path.join(self.path, name)
          if os.path.isdir(child):
            shutil.rmtree(child)
          else:
            os.remove(child)
    self.state = None

  def phase_dir(self, phase):
    return os.path.join(self.path, phase)

  def open(self, fingerprint, overwrite=False, updates_model=False):
    """Looks at what model_dir holds; writes nothing.

    Args:
      fingerprint: dict, the job's TrainConfig.fingerprint().
      overwrite: bool, --overwrite: replace a finished model, or discard an
        unfinished run with another fingerprint.
      updates_model: bool, the job works on the model already there
        (--phase=distill), so a finished model is expected, not in the way.

    Returns:
      "fresh" or "resume".

    Raises:
      ModelDirError: a finished model would be replaced without --overwrite,
        an unfinished run with other settings is there, or model_dir is
        not a directory.
    """
    if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
      raise ModelDirError(f"{self.model_dir}: not a directory; --model_dir "
                          "must be a directory (new or a model's)")
    state_path = os.path.join(self.path, RUN_FILE)
    if os.path.isfile(state_path):
      state = saving.read_json(state_path)
      differ = _differences(state.get("fingerprint", {}), fingerprint)
      if not differ:
        self.state = state
        logging.info("Resuming run %s in %s (phases done: %s).",
                     state["run_id"], self.model_dir,
                     state.get("phases_done") or "none")
        return "resume"
      if not overwrite:
        raise ModelDirError(
            f"{self.model_dir}: an unfinished run ({state.get('run_id')}) with "
            f"other settings is here; they differ in {_few(differ)}. Rerun "
            "with its settings to resume it, or pass --overwrite to discard "
            "it")
      logging.warning("--overwrite: discarding the unfinished run %s in %s.",
                      state.get("run_id"), self.model_dir)
      self.discard()
    finished = (os.path.isfile(os.path.join(self.model_dir,
                                            saving.MANIFEST_FILE)) or
                os.path.isfile(os.path.join(self.model_dir,
                                            saving.CONFIG_FILE)))
    if finished and not (overwrite or updates_model):
      raise ModelDirError(
          f"{self.model_dir}: holds a finished model; pass --overwrite to "
          "replace it (it stays in place until the new one is complete), or "
          "choose another --model_dir")
    if finished and overwrite and not updates_model:
      logging.warning("--overwrite: %s's model will be replaced when this "
                      "run finishes.", self.model_dir)
    return "fresh"

  def begin(self, fingerprint, run_id=None):
    """Creates .run/ and run.json for a fresh run (no-op when resuming)."""
    if self.state is not None:
      return self.state["run_id"]
    os.makedirs(self.staged, exist_ok=True)
    self.state = dict(run_id=run_id or publish_lib.new_run_id(),
                      fingerprint=fingerprint, phases_done=[])
    self._write()
    return self.state["run_id"]

  @property
  def run_id(self):
    return self.state["run_id"]

  def done(self, phase):
    return phase in self.state.get("phases_done", [])

  def mark_done(self, phase):
    """Records a finished phase (its model is in `staged`); its checkpoints
    are no longer needed."""
    if not self.done(phase):
      self.state.setdefault("phases_done", []).append(phase)
      self._write()
    shutil.rmtree(self.phase_dir(phase), ignore_errors=True)

  @property
  def publishing(self):
    """Whether a publication was started (and so must be finished, not
    redone: the staged files may already be partly in model_dir)."""
    return os.path.isfile(os.path.join(self.path, "publish.json"))

  def publish(self, info=None):
    """Moves the staged model into model_dir (MANIFEST.json last) and
    removes the run directory."""
    from fastbert_tf.training import loop  # pylint: disable=g-import-not-at-top
    manifest = publish_lib.publish(
        self.staged, self.model_dir, self.run_id,
        os.path.join(self.path, "publish.json"), info,
        after_move=lambda moved: loop.notify_checkpoint("publish", moved))
    shutil.rmtree(self.path)
    return manifest

  def _write(self):
    os.makedirs(self.path, exist_ok=True)
    saving.write_json(os.path.join(self.path, RUN_FILE), self.state)


def _remove(path):
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


def _differences(old, new):
  keys = sorted(set(old) | set(new))
  return [f"--{k} ({json.dumps(old.get(k))} -> {json.dumps(new.get(k))})"
          for k in keys if old.get(k) != new.get(k)]


def _few(items, limit=5):
  return ", ".join(items[:limit]) + (f" and {len(items) - limit} more"
                                     if len(items) > limit else "")
