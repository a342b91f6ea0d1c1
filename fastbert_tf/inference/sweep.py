"""The threshold sweep: every classifier run once, every speed derived.

The early-exit rule depends on the data only through each classifier's
criterion score and predicted label, so one forward pass of the full model
(every layer, every classifier) is enough to know where each sample would
exit at *any* speed and what it would answer there. `derive()` applies the
exit rule of the loop (criteria.exits, criteria.students_run) to those
scores:

  * a sample exits at the first layer whose score is < speed (compared in
    float32, as the loop compares), the teacher answering otherwise;
  * at speed <= 0 the loop skips the students, so every sample exits at the
    last layer and costs `flops.baseline` (not `flops.at_exit(L)`);
  * FLOPs per sample otherwise are `flops.at_exit(exit_layer)`.

tests/test_sweep.py checks the derived numbers against the loop itself.

Only `collect` and the exit rule need TensorFlow, and import it themselves:
parsing is plain Python, so the command line can reject a bad --speeds
before the slow import.
"""

import dataclasses
import math

import numpy as np


class SweepError(ValueError):
  """A sweep request that cannot be met (bad speeds, layers, targets)."""


@dataclasses.dataclass(frozen=True, eq=False)
class OnePass:
  """What the one forward pass leaves behind, per sample and classifier.

  Attributes:
    scores: float32 [n, L], criterion score of every classifier.
    predictions: int32 [n, L], argmax label of every classifier.
    labels: int32 [n], the true labels.
  """
  scores: np.ndarray
  predictions: np.ndarray
  labels: np.ndarray

  @property
  def num_layers(self):
    return self.scores.shape[1]

  def __len__(self):
    return len(self.labels)


# The most speeds one sweep derives: a grid step of 1e-4 over [0, 1].
MAX_SPEEDS = 10_001


def parse_speeds(text):
  """Parses `start:stop:step` (stop included when on the grid) or `a,b,c`.

  Args:
    text: str, e.g. "0:1:0.05" (21 speeds) or "0,0.1,0.5,0.8".

  Returns:
    tuple of float speeds in [0, 1], in the order given.

  Raises:
    SweepError: malformed text, a non-positive step or a speed outside [0, 1].
  """
  text = text.strip()
  try:
    if ":" in text:
      start, stop, step = (float(x) for x in text.split(":"))
      if not step > 0:
        raise SweepError(f"speeds {text!r}: step must be > 0, got {step}")
      count = math.floor((stop - start) / step + 1e-9) + 1
      if count > MAX_SPEEDS:  # before a tuple of that many is built
        raise SweepError(f"speeds {text!r}: {count:,} speeds; expected at "
                         f"most {MAX_SPEEDS:,} (a step >= 1e-4 over [0, 1])")
      # Rounded so that 0:1:0.05 gives 0.15, not 0.15000000000000002.
      speeds = tuple(round(start + i * step, 10) for i in range(max(count, 0)))
    else:
      speeds = tuple(float(x) for x in text.split(",") if x.strip())
  except ValueError as e:
    if isinstance(e, SweepError):
      raise
    raise SweepError(f"speeds {text!r}: expected start:stop:step or a comma "
                     f"list of numbers ({e})") from None
  if not speeds:
    raise SweepError(f"speeds {text!r}: no speeds")
  bad = [s for s in speeds if not 0.0 <= s <= 1.0]
  if bad:
    raise SweepError(f"speeds {text!r}: every speed must lie in [0, 1], got "
                     f"{bad}")
  return speeds


def collect(model, dataset, criterion):
  """Runs every classifier once over a labelled dataset.

  Args:
    model: FastBertClassifier.
    dataset: tf.data.Dataset of (features, labels) from data.pipeline.
    criterion: criteria.ExitCriterion scoring each classifier.

  Returns:
    OnePass over all samples, in dataset order.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ids = tf.TensorSpec([None, None], tf.int32)

  # Traced once for any batch and length: eager Keras calls cost ~3x more.
  @tf.function(input_signature=[ids, ids, ids])
  def run(token_ids, segment_ids, padding_mask):
    logits = model(dict(token_ids=token_ids, segment_ids=segment_ids,
                        padding_mask=padding_mask), training=False)
    log_probs = tf.nn.log_softmax(logits)
    return (criterion.scores(log_probs),
            tf.argmax(log_probs, axis=-1, output_type=tf.int32))

  scores, predictions, labels = [], [], []
  for features, batch_labels in dataset:
    s, p = run(features["token_ids"], features["segment_ids"],
               features["padding_mask"])
    scores.append(s.numpy())
    predictions.append(p.numpy())
    labels.append(batch_labels.numpy())
  return OnePass(np.concatenate(scores).astype(np.float32),
                 np.concatenate(predictions).astype(np.int32),
                 np.concatenate(labels).astype(np.int32))


def exit_layers(one_pass, speed):
  """1-based exit layer of every sample at `speed`: int32 [n].

  The rule is the loop's own (criteria.exits), applied to every layer's
  score at once; the first layer that says exit answers.
  """
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  num_layers = one_pass.num_layers
  done = criteria.exits(one_pass.scores, np.float32(speed),
                        np.arange(num_layers) == num_layers - 1).numpy()
  return (np.argmax(done, axis=1) + 1).astype(np.int32)


def students_run(speed):
  """Python bool: do the students run at this (scalar) speed?"""
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  return bool(criteria.students_run(np.float32(speed)))


def derive(one_pass, speeds, flops):
  """The early-exit results at each speed, from one pass.

  Args:
    one_pass: OnePass.
    speeds: iterable of float.
    flops: FlopsTable of the model at the length FLOPs are counted at.

  Returns:
    list of dicts, one per speed, with the keys of evaluate.summarize
    (speed, accuracy, mean_exit_layer, mean_flops, speedup, num_samples)
    plus exit_histogram: list of L ints, samples leaving after each layer.
  """
  n, num_layers = one_pass.scores.shape
  rows = np.arange(n)
  cost = np.array(flops.cumulative(), np.float64)
  records = []
  for speed in speeds:
    exits = exit_layers(one_pass, speed)
    answers = one_pass.predictions[rows, exits - 1]
    counts = np.bincount(exits - 1, minlength=num_layers)
    mean_flops = (float(flops.baseline) if not students_run(speed) else
                  float(counts @ cost) / n)
    records.append(dict(
        speed=float(speed),
        accuracy=float(np.mean(answers == one_pass.labels)),
        mean_exit_layer=float(np.mean(exits)),
        mean_flops=mean_flops,
        speedup=flops.speedup(mean_flops),
        num_samples=int(n),
        exit_histogram=[int(c) for c in counts]))
  return records


def classifier_accuracy(one_pass):
  """Accuracy of each classifier alone on every sample: list of L floats."""
  correct = one_pass.predictions == one_pass.labels[:, None]
  return [float(a) for a in correct.mean(axis=0)]


def accuracy_by_uncertainty(one_pass, layer, num_bins=10):
  """Accuracy of one classifier per score bin (the paper's Fig. 4).

  Args:
    one_pass: OnePass.
    layer: int, 1-based classifier index.
    num_bins: int, equal-width bins over [0, 1].

  Returns:
    dict: layer, bin_edges (num_bins + 1 floats), counts (num_bins ints),
    accuracy (num_bins floats, None for an empty bin).
  """
  if not 1 <= layer <= one_pass.num_layers:
    raise SweepError(f"uncertainty layer {layer} out of range: the model has "
                     f"layers 1..{one_pass.num_layers}")
  edges = np.linspace(0.0, 1.0, num_bins + 1)
  scores = one_pass.scores[:, layer - 1]
  # Right-closed last bin, so a score of exactly 1 lands in it.
  bins = np.clip(np.digitize(scores, edges[1:-1]), 0, num_bins - 1)
  correct = one_pass.predictions[:, layer - 1] == one_pass.labels
  counts = np.bincount(bins, minlength=num_bins)
  hits = np.bincount(bins, weights=correct, minlength=num_bins)
  accuracy = [float(h / c) if c else None for h, c in zip(hits, counts)]
  return dict(layer=int(layer), bin_edges=[float(e) for e in edges],
              counts=[int(c) for c in counts], accuracy=accuracy)


def default_uncertainty_layers(num_layers):
  """First, middle and last classifier (1-based), without repeats."""
  return sorted({1, (num_layers + 1) // 2, num_layers})


def choose_speed(records, reference_accuracy, accuracy_drop=None,
                 speedup=None):
  """Picks the speed that meets a target on (dev) records.

  Exactly one of accuracy_drop / speedup is given:
    accuracy_drop X (points): the largest speed whose accuracy is at least
      reference_accuracy - X / 100;
    speedup Y: the smallest speed whose speedup is at least Y.

  Args:
    records: derive() output.
    reference_accuracy: float in [0, 1], the accuracy at speed 0 (the
      teacher's) on the same split.
    accuracy_drop: float >= 0, percentage points, or None.
    speedup: float > 0, or None.

  Returns:
    (chosen record or None, a one-line explanation).
  """
  if (accuracy_drop is None) == (speedup is None):
    raise SweepError("give exactly one of accuracy_drop and speedup")
  # Accuracies are count ratios; the slack only absorbs X / 100 rounding.
  eps = 1e-9
  if accuracy_drop is not None:
    floor = reference_accuracy - accuracy_drop / 100.0
    ok = [r for r in records if r["accuracy"] >= floor - eps]
    chosen = max(ok, key=lambda r: r["speed"]) if ok else None
    goal = (f"accuracy >= {100 * floor:.2f}% (speed-0 accuracy "
            f"{100 * reference_accuracy:.2f}% minus {accuracy_drop:g} points)")
  else:
    ok = [r for r in records if r["speedup"] >= speedup - eps]
    chosen = min(ok, key=lambda r: r["speed"]) if ok else None
    goal = f"speedup >= {speedup:g}x"
  if chosen is None:
    best = max(records, key=lambda r: r["speedup"] if speedup else
               r["accuracy"])
    return None, (f"no speed meets {goal}; the best swept is speed "
                  f"{best['speed']:g}: {100 * best['accuracy']:.2f}% at "
                  f"{best['speedup']:.2f}x")
  return chosen, (f"speed {chosen['speed']:g} meets {goal}: "
                  f"{100 * chosen['accuracy']:.2f}% at "
                  f"{chosen['speedup']:.2f}x")
