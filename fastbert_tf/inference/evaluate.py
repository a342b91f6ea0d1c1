"""Adaptive evaluation: accuracy, exit layers and FLOPs at a list of speeds."""

import numpy as np
import tensorflow as tf

from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit


def collect_outputs(model, dataset, speed, flops,
                    criterion=criteria.ExitCriterion(), run=None):
  """Runs the early-exit loop over a labelled dataset at one speed.

  Args:
    model: FastBertClassifier.
    dataset: tf.data.Dataset of (features, labels) from data.pipeline.
    speed: float in [0, 1].
    flops: FlopsTable.
    criterion: criteria.ExitCriterion.
    run: optional compiled_early_exit(model, flops, criterion) to reuse;
      speed is one of its inputs, so one trace serves every speed.

  Returns:
    dict of numpy arrays over all samples: the early_exit outputs plus
    `labels` int32 [n].
  """
  run = run or early_exit.compiled_early_exit(model, flops, criterion)
  parts = {key: [] for key in early_exit.OUTPUT_KEYS + ("labels",)}
  for features, labels in dataset:
    out = run(features["token_ids"], features["segment_ids"],
              features["padding_mask"], tf.constant(speed, tf.float32))
    for key in early_exit.OUTPUT_KEYS:
      parts[key].append(out[key].numpy())
    parts["labels"].append(labels.numpy())
  return {key: np.concatenate(value) for key, value in parts.items()}


def summarize(outputs, speed, flops):
  """One results record: accuracy, mean exit layer, mean FLOPs, speedup."""
  mean_flops = float(np.mean(outputs["flops"]))
  return dict(
      speed=float(speed),
      accuracy=float(np.mean(outputs["label"] == outputs["labels"])),
      mean_exit_layer=float(np.mean(outputs["exit_layer"])),
      mean_flops=mean_flops,
      speedup=flops.speedup(mean_flops),
      num_samples=int(len(outputs["labels"])))


def evaluate_speeds(model, dataset, speeds, flops,
                    criterion=criteria.ExitCriterion()):
  """summarize(collect_outputs(...)) for every speed, in order, with the
  early-exit loop traced once."""
  run = early_exit.compiled_early_exit(model, flops, criterion)
  return [summarize(collect_outputs(model, dataset, s, flops, criterion, run),
                    s, flops) for s in speeds]


def format_table(records, baseline_flops):
  """A fixed-width text table of evaluate_speeds records."""
  lines = [f"baseline (full model) FLOPs per sample: {baseline_flops / 1e6:,.1f}M",
           f"{'speed':>6} {'accuracy':>9} {'exit layer':>10} "
           f"{'MFLOPs':>10} {'speedup':>8}"]
  for r in records:
    lines.append(f"{r['speed']:>6.2f} {100 * r['accuracy']:>8.2f}% "
                 f"{r['mean_exit_layer']:>10.2f} {r['mean_flops'] / 1e6:>10.1f} "
                 f"{r['speedup']:>7.2f}x")
  return "\n".join(lines)
