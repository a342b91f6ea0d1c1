"""The end-to-end job behind `python -m fastbert_tf.train`: data, vocab,
model, phase 1, phase 2, test evaluation at several speeds, results on disk."""

import dataclasses
import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from fastbert_tf.data import pipeline
from fastbert_tf.data import sources
from fastbert_tf.data import vocab as vocab_lib
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.inference import criteria
from fastbert_tf.inference import evaluate
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import phases as model_phases
from fastbert_tf.models import presets
from fastbert_tf.models import saving
from fastbert_tf.models.fastbert_classifier import FastBertClassifier
from fastbert_tf.training import optimization
from fastbert_tf.training import phases

RESULTS_FILE = "results.json"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training job needs; built from flags by train.py."""
  model_dir: str
  data: str = "quickstart"
  num_classes: int = 0
  skip_bad_rows: bool = False
  vocab: str = ""
  vocab_size: int = 8000
  lowercase: bool = True
  max_seq_length: int = 128
  max_train_samples: int = 0
  max_eval_samples: int = 0
  preset: str = ""
  config_json: str = ""
  pooling: str = ""
  init_checkpoint: str = ""
  text_prefix: str | None = None
  prune_vocab: bool = False
  freeze_token_embeddings: bool = False
  phase: str = "all"
  batch_size: int = 32
  eval_batch_size: int = 64
  length_group: int = 0
  finetune_epochs: int = 3
  finetune_learning_rate: float = 2e-5
  distill_epochs: int = 5
  distill_learning_rate: float = 2e-4
  warmup_fraction: float = 0.1
  weight_decay: float = 0.01
  kl_direction: str = "teacher_student"
  student_reduction: str = "sum"
  teacher_dropout: bool = False
  reinit_students: bool = False
  distill_data: str = ""
  speeds: tuple = (0.0, 0.1, 0.5, 0.8)
  seed: int = 0
  export_base: str = ""
  exit_criterion: str = "entropy"
  top_k: int = 2


def load_splits(cfg):
  """{"train", "dev", "test"} -> TextDataset, truncated as the config asks."""
  splits = {}
  for split in ("train", "dev", "test"):
    data = sources.load_split(cfg.data, split, cfg.num_classes or None,
                              cfg.skip_bad_rows)
    if data.labels is None:
      raise sources.DataError(
          f"{data.source}: the {split} split has no labels (e.g. a GLUE test "
          "split); training and evaluation need labelled train/dev/test")
    limit = cfg.max_train_samples if split == "train" else cfg.max_eval_samples
    if limit and limit < len(data):
      logging.info("Using the first %d of %d %s examples (--max_*_samples).",
                   limit, len(data), split)
      data = _head(data, limit)
    splits[split] = data
  return splits


def _head(data, n):
  return dataclasses.replace(
      data, texts_a=data.texts_a[:n],
      texts_b=None if data.texts_b is None else data.texts_b[:n],
      labels=None if data.labels is None else data.labels[:n])


def load_distill_data(cfg, train):
  """Phase 2's texts: --distill_data's (a labelled *.tsv, labels unused, or
  plain text lines), else the labelled train split. Read before phase 1, so a
  bad file fails fast."""
  if not cfg.distill_data:
    return train
  data = sources.read_distill_texts(cfg.distill_data, cfg.skip_bad_rows)
  if data.is_pair != train.is_pair:
    kinds = {True: "sentence pairs", False: "single texts"}
    raise sources.DataError(
        f"{cfg.distill_data}: --distill_data holds {kinds[data.is_pair]}, "
        f"but the task has {kinds[train.is_pair]}")
  logging.info("Phase 2 distills on %d texts from %s.", len(data), data.source)
  return data


def checkpoint_info(cfg):
  """The --init_checkpoint's CheckpointInfo, or None."""
  if not cfg.init_checkpoint:
    return None
  from fastbert_tf import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.read_info(cfg.init_checkpoint)


def build_encoder(cfg, train, info=None, distill_data=None):
  """The encoder: the checkpoint's SentencePiece model, or WordPiece from
  --vocab, the checkpoint's vocab or a vocabulary learned from the training
  text; pruned to the ids the training (and phase-2) texts use under
  --prune_vocab."""
  if info and info.sentencepiece_model and not cfg.vocab:
    prefix = info.text_prefix if cfg.text_prefix is None else cfg.text_prefix
    encoder = SentencePieceEncoder(
        info.sentencepiece_model, cfg.max_seq_length,
        text_pair=train.is_pair, input_format=info.input_format,
        text_prefix=prefix, kept_ids=info.kept_ids)
  else:
    encoder = _wordpiece_encoder(cfg, train, info)
  if cfg.prune_vocab:
    if encoder.kept_ids is not None:
      raise ValueError(f"--prune_vocab: {cfg.init_checkpoint} is already "
                       "pruned; prune from the full checkpoint instead")
    texts = [t for data in (train, distill_data) if data is not None
             for t in data.texts_a + (data.texts_b or ())]
    kept = encoder.used_ids(texts)
    logging.info("--prune_vocab: keeping %d of %d tokenizer ids (those the "
                 "%d training and phase-2 texts use, plus specials); other "
                 "ids map to the unknown token's row.", len(kept),
                 encoder.tokenizer_vocabulary_size, len(texts))
    encoder = encoder.replace(kept_ids=kept)
  return encoder


def _wordpiece_encoder(cfg, train, info):
  path = cfg.vocab or (info.vocab_path if info else "")
  lowercase = info.lowercase if info and not cfg.vocab else cfg.lowercase
  if not path:
    path = os.path.join(cfg.model_dir, saving.VOCAB_FILE)
    logging.info("Learning a %d-token vocabulary from %d training texts.",
                 cfg.vocab_size, len(train))
    texts = list(train.texts_a) + list(train.texts_b or ())
    vocab_lib.learn_vocab(texts, cfg.vocab_size, path, cfg.lowercase)
  # The packing follows the checkpoint's pretraining (UER: `[CLS] a`,
  # segments 1/2), even with another --vocab.
  return TextEncoder(path, cfg.max_seq_length, lowercase=lowercase,
                     text_pair=train.is_pair,
                     input_format=info.input_format if info else "bert",
                     kept_ids=None if cfg.vocab or not info else info.kept_ids)


def log_truncation(lengths, encoder):
  """Logs and returns {split: examples truncated to max_seq_length}, from
  {split: token_lengths}, so truncation is never silent."""
  counts = {}
  for name, split_lengths in lengths.items():
    counts[name] = int(np.sum(split_lengths > encoder.max_seq_length))
    total = len(split_lengths)
    logging.info("%s: %d of %d examples (%.1f%%) are longer than "
                 "max_seq_length=%d tokens and are truncated.", name,
                 counts[name], total, 100 * counts[name] / max(total, 1),
                 encoder.max_seq_length)
  return counts


def model_architecture(cfg, encoder, num_classes, info=None):
  """FastBertClassifier kwargs: the checkpoint's backbone (a --preset must
  agree with it and adds its classifier settings; else the paper's
  128-wide heads), or the --config_json / --preset architecture."""
  if info:
    arch = dict(info.architecture)
    if cfg.preset:
      preset = presets.get_preset(cfg.preset)
      differ = {k: (v, arch[k]) for k, v in preset.items()
                if k in arch and arch[k] != v}
      if differ:
        raise ValueError(
            f"--preset={cfg.preset} does not describe --init_checkpoint="
            f"{cfg.init_checkpoint}: (preset, checkpoint) differ in {differ}")
      arch.update({k: preset[k] for k in presets.CLASSIFIER_KEYS
                   if k in preset})
    if encoder.kept_ids is not None:
      arch["vocabulary_size"] = encoder.vocabulary_size
    elif encoder.vocabulary_size > arch["vocabulary_size"]:
      raise ValueError(
          f"the tokenizer has {encoder.vocabulary_size} ids but "
          f"{cfg.init_checkpoint} only {arch['vocabulary_size']} embedding "
          "rows")
  else:
    arch = (presets.load_config_json(cfg.config_json) if cfg.config_json
            else presets.get_preset(cfg.preset or "quickstart"))
    arch["vocabulary_size"] = encoder.vocabulary_size
  arch["num_classes"] = num_classes
  arch["pooling"] = cfg.pooling or arch.get("pooling", "first")
  if arch.get("max_sequence_length", 512) < cfg.max_seq_length:
    raise ValueError(
        f"--max_seq_length={cfg.max_seq_length} exceeds the architecture's "
        f"max_sequence_length={arch['max_sequence_length']}")
  return arch


def build_model(cfg, encoder, num_classes, info=None):
  """A FastBertClassifier (see model_architecture), its backbone restored
  from --init_checkpoint (only the kept rows under --prune_vocab)."""
  model = FastBertClassifier(
      **model_architecture(cfg, encoder, num_classes, info))
  model.build()
  if info:
    from fastbert_tf import checkpoints  # pylint: disable=g-import-not-at-top
    report = checkpoints.restore_backbone(
        model.backbone, cfg.init_checkpoint,
        kept_ids=encoder.kept_ids if cfg.prune_vocab else None)
    logging.info("Initialised the backbone from %s (%s): %s",
                 cfg.init_checkpoint, info.format, report.summary())
  return model


def run_phase(model, phase, train_ds, dev_ds, epochs, learning_rate,
              steps_per_epoch, cfg):
  """Compiles for `phase` with a fresh AdamW sized to it and fits."""
  optimizer = optimization.make_optimizer(
      learning_rate, epochs * steps_per_epoch, cfg.warmup_fraction,
      cfg.weight_decay)
  model.phase_config = model_phases.PhaseConfig(
      phase, kl_direction=cfg.kl_direction,
      student_reduction=cfg.student_reduction,
      teacher_dropout=cfg.teacher_dropout,
      freeze_token_embeddings=cfg.freeze_token_embeddings)
  model.compile(optimizer)
  callbacks = [keras.callbacks.TensorBoard(
      os.path.join(cfg.model_dir, "logs", phase))]
  if phase != "distill":
    # Keep the best-dev epoch of the answering classifier (the teacher).
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=f"val_accuracy_layer_{model.num_layers}", mode="max",
        patience=epochs, restore_best_weights=True))
  logging.info("Phase %s: %d epochs x %d steps, peak lr %g.", phase, epochs,
               steps_per_epoch, learning_rate)
  # One line per epoch when logging to a file; a progress bar on a terminal.
  # shuffle=False: the dataset already reshuffles itself every epoch.
  history = model.fit(train_ds, validation_data=dev_ds, epochs=epochs,
                      callbacks=callbacks, shuffle=False,
                      verbose=1 if sys.stdout.isatty() else 2)
  return {k: [float(x) for x in v] for k, v in history.history.items()}


def run_training(cfg):
  """Runs the whole job and returns the results dict written to results.json."""
  keras.utils.set_random_seed(cfg.seed)
  tf.io.gfile.makedirs(cfg.model_dir)
  start = time.time()
  splits = load_splits(cfg)
  num_classes = cfg.num_classes or sources.infer_num_classes(*splits.values())
  distill_data = (load_distill_data(cfg, splits["train"])
                  if cfg.phase in ("all", "distill") else None)
  if cfg.phase == "distill":
    model, encoder = saving.load_model(cfg.model_dir)
    if model.num_classes != num_classes:
      raise sources.DataError(
          f"{cfg.model_dir} has {model.num_classes} classes, the data "
          f"{num_classes}")
    if cfg.reinit_students:
      phases.reinit_students(model, cfg.seed)
  else:
    info = checkpoint_info(cfg)
    encoder = build_encoder(cfg, splits["train"], info, distill_data)
    model = build_model(cfg, encoder, num_classes, info)
  lengths = {name: pipeline.token_lengths(data, encoder)
             for name, data in splits.items()}
  truncated = log_truncation(lengths, encoder)
  make = lambda d, **kw: pipeline.make_dataset(
      d, encoder, length_group=cfg.length_group, **kw)
  train_ds = make(splits["train"], batch_size=cfg.batch_size, shuffle=True,
                  seed=cfg.seed, lengths=lengths["train"])
  dev_ds = make(splits["dev"], batch_size=cfg.eval_batch_size,
                lengths=lengths["dev"])
  steps = math.ceil(len(splits["train"]) / cfg.batch_size)
  histories = {}
  if cfg.phase in ("all", "finetune", "joint"):
    phase = "joint" if cfg.phase == "joint" else "finetune"
    histories[phase] = run_phase(model, phase, train_ds, dev_ds,
                                 cfg.finetune_epochs,
                                 cfg.finetune_learning_rate, steps, cfg)
    saving.save_model(model, encoder, cfg.model_dir)
  if cfg.phase in ("all", "distill"):
    distill_ds = make(distill_data, batch_size=cfg.batch_size, shuffle=True,
                      seed=cfg.seed, with_labels=False)
    histories["distill"] = run_phase(
        model, "distill", distill_ds, dev_ds, cfg.distill_epochs,
        cfg.distill_learning_rate,
        math.ceil(len(distill_data) / cfg.batch_size), cfg)
    saving.save_model(model, encoder, cfg.model_dir)
  results = evaluate_and_write(model, encoder, splits["test"], cfg,
                               histories, time.time() - start, truncated)
  if cfg.export_base:
    from fastbert_tf.serving import export  # pylint: disable=g-import-not-at-top
    results["export_path"] = export.export_saved_model(
        model, encoder, cfg.export_base,
        criterion=criteria.ExitCriterion(cfg.exit_criterion, top_k=cfg.top_k))
    print(f"Exported {results['export_path']}", flush=True)
  return results


def evaluate_and_write(model, encoder, test, cfg, histories, train_seconds,
                       truncated=None):
  """Evaluates the test split at every speed; writes results.json."""
  # The encoder's length, not the flag's: under --phase=distill the encoder
  # (and so the padded length FLOPs are counted at) comes from model_dir.
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  test_ds = pipeline.make_dataset(test, encoder, batch_size=cfg.eval_batch_size,
                                  length_group=cfg.length_group)
  criterion = criteria.ExitCriterion(cfg.exit_criterion, top_k=cfg.top_k)
  records = evaluate.evaluate_speeds(model, test_ds, cfg.speeds, table,
                                     criterion)
  print(evaluate.format_table(records, table.baseline), flush=True)
  results = dict(speeds=records, baseline_flops=table.baseline,
                 flops_per_layer=table.layer,
                 flops_per_classifier=table.classifier,
                 num_layers=model.num_layers, num_classes=model.num_classes,
                 exit_criterion=dataclasses.asdict(criterion),
                 test_source=test.source, num_test_samples=len(test),
                 train_seconds=train_seconds, history=histories,
                 truncated_examples=truncated or {},
                 max_seq_length=encoder.max_seq_length)
  path = os.path.join(cfg.model_dir, RESULTS_FILE)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(json.dumps(results, indent=2) + "\n")
  logging.info("Wrote %s", path)
  return results
