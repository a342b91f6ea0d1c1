"""A run's data: the splits, their label set, phase 2's texts, and the
tf.data pipelines each phase trains and is evaluated on."""

import dataclasses

import numpy as np
from absl import logging

from fastbert_tf.data import labels as labels_lib
from fastbert_tf.data import pipeline
from fastbert_tf.data import rows
from fastbert_tf.data import sources
from fastbert_tf.data.rows import DataError
from fastbert_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class RunData:
  """What a run reads, checked.

  Attributes:
    splits: {"train", "dev", "test": TextDataset}.
    label_set: data.labels.LabelSet.
    distill: TextDataset of phase 2's texts, or None (no phase 2).
  """
  splits: dict
  label_set: labels_lib.LabelSet
  distill: object


def load(cfg):
  """Reads and checks every split, the labels and phase 2's texts.

  Raises:
    DataError: naming the file and line (see data.labels, data.sources).
  """
  limit = int(cfg.num_classes) or (len(cfg.labels) if cfg.labels else None)
  splits = {}
  for split in ("train", "dev", "test"):
    data = sources.load_split(cfg.data, split, limit, cfg.skip_bad_rows,
                              cfg.max_bad_rows)
    if data.labels is None:
      raise DataError(
          f"{data.source}: the {split} split has no labels (e.g. a GLUE test "
          "split); training and evaluation need labelled train/dev/test")
    cap = cfg.max_train_samples if split == "train" else cfg.max_eval_samples
    if cap and cap < len(data):
      logging.info("Using the first %d of %d %s examples (--max_*_samples).",
                   cap, len(data), split)
      data = data.head(cap)
    splits[split] = data
  train = splits["train"]
  if cfg.num_classes > len(train):
    # Before the label counts (and a model) are sized by it.
    raise ConfigError(
        f"--num_classes={cfg.num_classes}: more classes than the "
        f"{len(train)} training examples of {train.source}; expected at "
        f"most {len(train)} (a class needs an example to be learnt)")
  label_set = labels_lib.resolve(splits, cfg.labels or None, cfg.num_classes)
  if cfg.exit_criterion == "topk_entropy" and (
      cfg.top_k > label_set.num_classes):
    raise ConfigError(
        f"--top_k={cfg.top_k}: more than the task's {label_set.num_classes} "
        f"classes; expected 2 to {label_set.num_classes}")
  distill = None
  if cfg.phase in ("all", "distill"):
    distill = load_distill_data(cfg, train)
  for phase, data in (("phase 1", train if cfg.phase in (
      "all", "finetune", "joint") else None), ("phase 2", distill)):
    if data is not None and cfg.batch_size > len(data):
      raise ConfigError(
          f"--batch_size={cfg.batch_size}: larger than the {len(data)} "
          f"examples {phase} trains on ({data.source}); expected at most "
          f"{len(data)}")
  return RunData(splits, label_set, distill)


def apply_text_rule(cfg, run_data, encoder):
  """RunData with every split's (and phase 2's) empty texts refused: an
  error naming file and line, or under --skip_bad_rows skipped and counted.
  Runs once the encoder is known: what is empty is the tokenizer's call."""
  check = lambda d: rows.refuse_empty_texts(d, encoder, cfg.skip_bad_rows,
                                            cfg.max_bad_rows)
  splits = {name: check(d) for name, d in run_data.splits.items()}
  distill = run_data.distill
  if distill is run_data.splits["train"]:
    distill = splits["train"]
  elif distill is not None:
    distill = check(distill)
  return RunData(splits, run_data.label_set, distill)


def load_distill_data(cfg, train):
  """--distill_data's texts (a labelled *.tsv, labels unused, or plain text
  lines), else the labelled train split. Read before phase 1, so a bad file
  fails fast."""
  if not cfg.distill_data:
    return train
  data = sources.read_distill_texts(cfg.distill_data, cfg.skip_bad_rows,
                                    cfg.max_bad_rows)
  if data.is_pair != train.is_pair:
    kinds = {True: "sentence pairs", False: "single texts"}
    raise DataError(
        f"{cfg.distill_data}: --distill_data holds {kinds[data.is_pair]}, "
        f"but the task has {kinds[train.is_pair]}")
  logging.info("Phase 2 distills on %d texts from %s.", len(data), data.source)
  return data


def skipped_rows(run_data):
  """{split: {"count": n, "rows": ["path:line: reason", ...]}} of the rows
  skipped under --skip_bad_rows (first 100 listed), for results.json."""
  named = dict(run_data.splits)
  if run_data.distill is not None and run_data.distill is not (
      run_data.splits["train"]):
    named["distill"] = run_data.distill
  return {name: dict(count=len(d.skipped),
                     rows=[str(r) for r in d.skipped[:100]])
          for name, d in named.items() if d.skipped}


def class_weights(cfg, label_set, train):
  """Per-example weights from --class_weights ("balanced" or one number per
  class), or None.

  Raises:
    DataError: the wrong number of weights, or a non-positive one.
  """
  spec = list(cfg.class_weights)
  if not spec:
    return None
  k = label_set.num_classes
  if spec == ["balanced"]:
    counts = np.bincount(train.labels, minlength=k).astype(np.float64)
    weights = len(train) / (k * np.maximum(counts, 1.0))
  else:
    try:
      weights = np.array([float(w) for w in spec])
    except ValueError:
      raise DataError(f"--class_weights={','.join(spec)}: expected "
                      f"'balanced' or {k} numbers") from None
    if len(weights) != k or not np.all(np.isfinite(weights) & (weights > 0)):
      raise DataError(f"--class_weights={','.join(spec)}: expected {k} "
                      "finite positive numbers (one per class)")
  logging.info("Class weights: %s", np.round(weights, 4).tolist())
  return weights[train.labels].astype(np.float32)


def log_truncation(lengths, max_seq_length):
  """Logs and returns {split: examples truncated to max_seq_length}, from
  {split: token_lengths}, so truncation is never silent."""
  counts = {}
  for name, split_lengths in lengths.items():
    counts[name] = int(np.sum(split_lengths > max_seq_length))
    total = len(split_lengths)
    logging.info("%s: %d of %d examples (%.1f%%) are longer than "
                 "max_seq_length=%d tokens and are truncated.", name,
                 counts[name], total, 100 * counts[name] / max(total, 1),
                 max_seq_length)
  return counts


def train_batches(cfg, data, encoder, lengths, replicas, with_labels,
                  weights=None):
  """(make_dataset(epoch) for the PhaseLoop, steps per epoch).

  Multi-replica strategies get equal global batches (the last, smaller one
  is dropped, a different one every epoch; logged).
  """
  drop = replicas > 1
  steps = pipeline.num_batches(len(data), cfg.batch_size, drop)
  if drop and len(data) % cfg.batch_size:
    logging.info("%d replicas: each epoch drops its last %d examples "
                 "(not a full global batch of %d).", replicas,
                 len(data) % cfg.batch_size, cfg.batch_size)
  if steps == 0:
    raise DataError(f"{data.source}: {len(data)} examples make no full batch "
                    f"of --batch_size={cfg.batch_size}")

  def make(epoch):
    return pipeline.epoch_dataset(
        data, encoder, cfg.batch_size, cfg.seed, epoch,
        with_labels=with_labels, length_group=cfg.length_group,
        lengths=lengths, drop_remainder=drop,
        pad_to_multiple_of=cfg.pad_to_multiple_of, sample_weights=weights)
  return make, steps


def eval_batches(cfg, data, encoder, lengths=None):
  """(features, labels) batches of a split, in one pass (grouped by length
  under --length_group, padded as --pad_to_multiple_of says)."""
  ds = pipeline.make_dataset(data, encoder, cfg.eval_batch_size,
                             length_group=cfg.length_group, lengths=lengths)
  if cfg.pad_to_multiple_of:
    ds = ds.map(lambda *e: pipeline.pad_features(e, cfg.pad_to_multiple_of,
                                                 encoder))
  return ds
