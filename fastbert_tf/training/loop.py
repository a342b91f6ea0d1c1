"""One training phase as a resumable loop, under any tf.distribute strategy.

`PhaseLoop.run()` trains a compiled FastBertClassifier for a number of
epochs, evaluates the dev split after each, keeps the best-dev weights on
disk, and checkpoints (model, seed states, optimizer, position, history)
every `checkpoint_every_steps` steps and at every epoch end. Run it again
over the same state directory after a crash or preemption and it continues
from the last checkpoint: same step, same optimizer moments and schedule
position, same data order (each epoch's order depends on the seed and the
epoch only; see `make_train_dataset`), same dropout draws (Keras' seed
states are checkpointed), so it ends with the weights of an uninterrupted
run.

Why not `model.fit` + `keras.callbacks.BackupAndRestore`: that callback
restores at epoch granularity (a mid-epoch backup restarts the epoch with
weights that already saw part of it) and keeps the best-dev teacher only in
memory. The steps themselves are still Keras': `model.train_step` /
`model.test_step` under `strategy.run`, as `fit` runs them.
"""

import dataclasses
import json
import os
import time

import tensorflow as tf
from absl import logging

from fastbert_tf.errors import DamagedRunError

# Called with (phase, step) after every checkpoint is written, and with
# ("publish", n) after the n-th file of a publication moved. Empty in normal
# use; fastbert_tf/testing/kill_run.py adds one that kill -9s the process
# at a chosen point, so tests can interrupt a run where they want.
CHECKPOINT_OBSERVERS = []


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """How one phase runs.

  Attributes:
    name: the phase name, for logs and summaries ("finetune", "distill"...).
    epochs: int.
    steps_per_epoch: int, batches per epoch (every replica's share summed).
    checkpoint_every_steps: int, 0 = at epoch ends only.
    monitor: dev metric whose best epoch is kept (e.g. "accuracy_layer_12",
      maximized), or None to keep the last weights.
    jit_compile: compile the train and eval steps with XLA.
    log_every_steps: int, TensorBoard scalars and a log line this often.
    log_metrics: dev metrics shown in the epoch's log line (all of them go
      to TensorBoard and the history); e.g. phase 1 shows only the teacher
      it trains, not the untrained students.
  """
  name: str
  epochs: int
  steps_per_epoch: int
  checkpoint_every_steps: int = 0
  monitor: str | None = None
  jit_compile: bool = False
  log_every_steps: int = 50
  log_metrics: tuple | None = None


class PhaseLoop:
  """Trains one phase; see the module docstring.

  Args:
    model: a built FastBertClassifier, its `phase_config` set and compiled
      (optimizer), all created under `strategy.scope()`.
    strategy: tf.distribute.Strategy.
    make_train_dataset: callable(epoch: int) -> tf.data.Dataset of global
      batches for that epoch, the same for the same epoch every time.
    dev_dataset: tf.data.Dataset of (features, labels) global batches, or
      None (no evaluation, no best epoch).
    state_dir: str, where this phase's checkpoints live (created).
    config: LoopConfig.
    summary_dir: optional str for TensorBoard logs.
    is_chief: bool, whether this process writes checkpoints and summaries
      (multi-worker: worker 0); the others write to scratch directories.

  Example:

  >>> loop = PhaseLoop(model, strategy, lambda epoch: batches(epoch), dev,
  ...                  "runs/x/.run/finetune", LoopConfig("finetune", 3, 250,
  ...                  checkpoint_every_steps=100, monitor="accuracy_layer_12"))
  >>> history = loop.run()   # {"loss": [...], "val_accuracy_layer_12": [...]}
  """

  def __init__(self, model, strategy, make_train_dataset, dev_dataset,
               state_dir, config, summary_dir=None, is_chief=True):
    self.model, self.strategy, self.config = model, strategy, config
    self.make_train_dataset = make_train_dataset
    self.dev_dataset = dev_dataset
    self.is_chief = is_chief
    self.state_dir = state_dir
    write_dir = state_dir if is_chief else os.path.join(
        state_dir, f".worker-{os.getpid()}")
    optimizer = model.optimizer
    # Host-side bookkeeping, outside the strategy: every worker keeps its own
    # copy (collectives cannot broadcast strings).
    self._step = tf.Variable(0, dtype=tf.int64, trainable=False,
                             name="global_step")
    self._history = tf.Variable("{}", dtype=tf.string, trainable=False,
                                name="history")
    with strategy.scope():
      # Slots exist before a restore, so it can fill them.
      optimizer.build(_phase_variables(model))
    # Seed states (model.variables has them) make dropout resume exactly;
    # the metric trackers make a resumed epoch's mean loss exact too.
    self._checkpoint = tf.train.Checkpoint(
        model_variables=list(model.variables),
        optimizer_variables=list(optimizer.variables),
        metric_variables=list(model.metrics_variables),
        step=self._step, history=self._history)
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, os.path.join(write_dir, "latest"), max_to_keep=2,
        step_counter=self._step)
    self._best = tf.train.Checkpoint(model_variables=list(model.variables))
    self._best_manager = tf.train.CheckpointManager(
        self._best, os.path.join(write_dir, "best"), max_to_keep=1)
    self._restore_dir, self._write_dir = state_dir, write_dir
    self._writer = (tf.summary.create_file_writer(summary_dir)
                    if summary_dir and is_chief else None)
    self._train_step = self._distributed(model.train_step, config.jit_compile)
    self._test_step = self._distributed(model.test_step, config.jit_compile)

  def _distributed(self, step, jit_compile):
    strategy = self.strategy

    def run(batch):
      return strategy.run(step, args=(batch,))
    # Without XLA, shapes generalise after a retrace or two (as Keras does);
    # with XLA every traced shape is one compiled program, so the input
    # pipeline must bound them (--pad_to_multiple_of).
    return tf.function(run, jit_compile=jit_compile,
                       reduce_retracing=not jit_compile)

  @property
  def traced_shapes(self):
    """How many programs the train step was traced (= XLA-compiled) for."""
    return self._train_step.experimental_get_tracing_count()

  def run(self):
    """Trains to the end of the phase (resuming if a checkpoint exists).

    Returns:
      dict of per-epoch lists (loss, val_* metrics), as Keras' History.
    """
    cfg = self.config
    history = self._restore()
    step = int(self._step.numpy())
    total = cfg.epochs * cfg.steps_per_epoch
    while step < total:
      epoch, offset = divmod(step, cfg.steps_per_epoch)
      logging.info("Phase %s: epoch %d/%d%s.", cfg.name, epoch + 1,
                   cfg.epochs, f", from step {offset}" if offset else "")
      step = self._train_epoch(epoch, offset, step)
      self._end_epoch(epoch, history)
      self._save(step, history)
    self._restore_best(history)
    return {k: v for k, v in history.items() if isinstance(v, list)}

  # -- steps ------------------------------------------------------------------
  def _train_epoch(self, epoch, offset, step):
    cfg = self.config
    if not offset:  # mid-epoch, the restored trackers hold the epoch so far
      for metric in self.model.metrics:
        metric.reset_state()
    dataset = self.make_train_dataset(epoch).skip(offset)
    options = tf.data.Options()
    # In-memory data has no files to shard by: workers split its batches.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    dataset = dataset.with_options(options)
    batches = iter(self.strategy.experimental_distribute_dataset(dataset))
    start, done = time.time(), 0
    for _ in range(offset, cfg.steps_per_epoch):
      try:
        batch = next(batches)
      except StopIteration:
        raise RuntimeError(
            f"phase {cfg.name}: epoch {epoch + 1} ran out of batches after "
            f"{done + offset} of {cfg.steps_per_epoch}; steps_per_epoch "
            "does not match the dataset") from None
      self._train_step(batch)
      step, done = step + 1, done + 1
      if cfg.log_every_steps and step % cfg.log_every_steps == 0:
        self._log_step(step, done / max(time.time() - start, 1e-9))
      if cfg.checkpoint_every_steps and (
          step % cfg.checkpoint_every_steps == 0) and (
              step % cfg.steps_per_epoch):
        self._save(step, None)
    return step

  def _log_step(self, step, steps_per_second):
    loss = float(self.model.loss_tracker.result())
    logging.info("Phase %s: step %d, loss %.4f, %.2f steps/s.",
                 self.config.name, step, loss, steps_per_second)
    if self._writer:
      with self._writer.as_default(step=step):
        tf.summary.scalar("loss", loss)
        tf.summary.scalar("learning_rate",
                          float(self.model.optimizer.learning_rate))

  def _end_epoch(self, epoch, history):
    logs = {"loss": float(self.model.loss_tracker.result())}
    if self.dev_dataset is not None:
      logs.update({f"val_{k}": v for k, v in self.evaluate().items()})
    for key, value in logs.items():
      history.setdefault(key, []).append(value)
    if self._writer:
      with self._writer.as_default(step=epoch + 1):
        for key, value in logs.items():
          tf.summary.scalar(f"epoch_{key}", value)
    logging.info("Phase %s, epoch %d: %s", self.config.name, epoch + 1,
                 _format(logs, self.config.log_metrics))
    monitor = self.config.monitor and f"val_{self.config.monitor}"
    if monitor and monitor in logs:
      best = history.get("best_value")
      if best is None or logs[monitor] > best:
        history["best_value"], history["best_epoch"] = logs[monitor], epoch
        self._best_manager.save(checkpoint_number=epoch + 1)

  def evaluate(self):
    """Runs the dev split; returns {metric: value} (loss = the teacher's)."""
    for metric in self.model.metrics:
      metric.reset_state()
    for batch in self.strategy.experimental_distribute_dataset(
        self.dev_dataset):
      self._test_step(batch)
    return {m.name: float(m.result()) for m in self.model.metrics}

  # -- state ------------------------------------------------------------------
  def _save(self, step, history):
    self._step.assign(step)
    if history is not None:
      self._history.assign(json.dumps(history))
    self._manager.save(checkpoint_number=step)
    logging.info("Phase %s: checkpoint at step %d.", self.config.name, step)
    notify_checkpoint(self.config.name, step)

  def _restore(self):
    latest = tf.train.latest_checkpoint(os.path.join(self._restore_dir,
                                                     "latest"))
    if latest is None:
      return {}
    _restore_or_name(self._checkpoint, latest)
    step = int(self._step.numpy())
    history = json.loads(self._history.numpy().decode("utf-8"))
    epochs_done = len(history.get("loss", []))
    # A mid-epoch checkpoint carries the history of the finished epochs.
    logging.info("Phase %s: resumed from %s (step %d of %d, %d epoch(s) "
                 "done).", self.config.name, latest, step,
                 self.config.epochs * self.config.steps_per_epoch, epochs_done)
    return history

  def _restore_best(self, history):
    # Every worker saved the same best weights; each reads its own copy.
    best = tf.train.latest_checkpoint(os.path.join(self._write_dir, "best"))
    if not self.config.monitor or best is None:
      return
    _restore_or_name(self._best, best)
    logging.info("Phase %s: kept the best dev epoch, %d (%s %.4f).",
                 self.config.name, history["best_epoch"] + 1,
                 self.config.monitor, history["best_value"])


def _restore_or_name(checkpoint, path):
  """checkpoint.restore(path), all of it; a damaged or foreign checkpoint is
  named as the user's to fix, not a traceback."""
  try:
    checkpoint.restore(path).assert_consumed()
  except (tf.errors.OpError, ValueError, IndexError, AssertionError) as e:
    line = (str(e).strip().splitlines() or [""])[0][:200]
    raise DamagedRunError(
        f"{path}: cannot restore this checkpoint of the unfinished run "
        f"({type(e).__name__}: {line}); pass --overwrite to discard the "
        "unfinished run and start again") from None


def _phase_variables(model):
  from fastbert_tf.models import phases  # pylint: disable=g-import-not-at-top
  return phases.trainable_variables(model, model.phase_config)


def _format(logs, metrics):
  shown = {k: v for k, v in logs.items()
           if k in ("loss", "val_loss") or metrics is None or (
               k.startswith("val_") and k[len("val_"):] in metrics)}
  return ", ".join(f"{k} {v:.4f}" for k, v in shown.items())


def notify_checkpoint(phase, step):
  """Runs every CHECKPOINT_OBSERVERS callback: a checkpoint (or a published
  file) is safely on disk."""
  for observer in CHECKPOINT_OBSERVERS:
    observer(phase, step)
