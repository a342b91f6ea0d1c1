"""Exit criteria: per-sample scores in [0, 1]; a sample exits when score < speed.

Every criterion keeps FastBERT's meaning of `speed`: 0 never exits early (no
score is below 0), larger speeds exit earlier.

  entropy       normalized entropy -sum p log p / log N (the paper's).
  topk_entropy  entropy of the top-k probabilities renormalized, / log k:
                with many classes plain entropy saturates near 1 (FastPLM).
  max_prob      1 - max_c p_c.
  patience      PABEE-style agreement: 1 - a / (L - 1), where a is how many
                classifiers in a row before this one predicted the same
                label. A sample exits once a > (1 - speed) (L - 1): speed
                1 - k / (L - 1) + eps asks for k consecutive agreements.
                At speed 0 the loop skips the students, so the teacher's
                patience score is 1 (no agreements seen).

Each criterion has two forms that must agree (a test checks it): `step()`
for the early-exit loop, one layer at a time on the samples still active, and
`scores()` for the one-pass sweep, on every layer at once.

The exit rule itself is the three functions below, the one place that
decides it: `students_run` (do the classifiers before the last run for a
sample at this speed?), `exits` (does a sample leave at this classifier?)
and `advance_state` (how criterion state moves, or stays fresh at speed 0).
The batched loop (early_exit.py), the one-text XLA program (single_text.py)
and the sweep (sweep.py) all call them; fastbert_tf/testing/exit_oracle.py
restates them in numpy as the tests' oracle.
"""

import dataclasses

import tensorflow as tf

from fastbert_tf.inference import uncertainty

NAMES = ("entropy", "topk_entropy", "max_prob", "patience")


@dataclasses.dataclass(frozen=True)
class ExitCriterion:
  """A named exit criterion.

  Attributes:
    name: one of NAMES.
    top_k: k of topk_entropy (ignored otherwise).
  """
  name: str = "entropy"
  top_k: int = 2

  def __post_init__(self):
    if self.name not in NAMES:
      raise ValueError(f"exit criterion must be one of {NAMES}, got "
                       f"{self.name!r}")
    if self.name == "topk_entropy" and self.top_k < 2:
      raise ValueError(f"--top_k={self.top_k}: topk_entropy renormalizes "
                       "over the k likeliest classes; expected k >= 2")

  @property
  def stateful(self):
    return self.name == "patience"

  def initial_state(self, batch):
    """Per-sample loop state: (previous label int32 [batch], agreements
    int32 [batch]); empty tensors' worth of work for stateless criteria."""
    return (tf.fill([batch], -1), tf.zeros([batch], tf.int32))

  def step(self, log_probs, state, num_layers):
    """Scores one layer's classifier outputs.

    Args:
      log_probs: float32 [batch, num_classes].
      state: initial_state() or the previous step's new state.
      num_layers: int, L.

    Returns:
      (score float32 [batch], new state).
    """
    if self.name != "patience":
      return self._static_score(log_probs), state
    previous, agreements = state
    label = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    agreements = tf.where(tf.equal(label, previous), agreements + 1, 0)
    return _patience_score(agreements, num_layers), (label, agreements)

  def scores(self, log_probs):
    """Scores every layer at once.

    Args:
      log_probs: float32 [n, num_layers, num_classes].

    Returns:
      float32 [n, num_layers].
    """
    num_layers = log_probs.shape[1]
    if self.name != "patience":
      flat = tf.reshape(log_probs, [-1, log_probs.shape[-1]])
      return tf.reshape(self._static_score(flat), tf.shape(log_probs)[:2])
    labels = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    same = tf.cast(tf.equal(labels[:, 1:], labels[:, :-1]), tf.int32)
    # agreements[l] = length of the run of `same` ending at l (0 if broken).
    runs = [tf.zeros_like(labels[:, 0])]
    for l in range(1, num_layers):
      runs.append((runs[-1] + 1) * same[:, l - 1])
    return _patience_score(tf.stack(runs, axis=1), num_layers)

  def _static_score(self, log_probs):
    if self.name == "entropy":
      return uncertainty.normalized_entropy(log_probs)
    if self.name == "max_prob":
      return 1.0 - tf.exp(tf.reduce_max(log_probs, axis=-1))
    k = min(self.top_k, log_probs.shape[-1])
    top, _ = tf.math.top_k(log_probs, k=k)
    return uncertainty.normalized_entropy(tf.nn.log_softmax(top))


def students_run(speed):
  """Whether the students (every classifier but the last) run.

  No criterion score is below 0, so at a speed of 0 a student could never
  answer: it is skipped, and the sample costs the plain model.

  Args:
    speed: float32 tensor (or array) of any shape, per sample or scalar.

  Returns:
    bool tensor of speed's shape.
  """
  return tf.greater(speed, 0.0)


def exits(score, speed, is_last):
  """Whether a sample leaves at this classifier.

  Args:
    score: float32 [...], the classifier's criterion score.
    speed: float32, broadcastable to score: the sample's threshold.
    is_last: bool, broadcastable to score: the classifier is the teacher,
      which always answers.

  Returns:
    bool [...]: score < speed where the students run, or the teacher.

  Example:
    >>> exits(tf.constant([0.05, 0.5]), 0.1, False).numpy()
    array([ True, False])
  """
  speed = tf.cast(speed, tf.float32)
  return tf.logical_or(tf.logical_and(students_run(speed), score < speed),
                       is_last)


def advance_state(new_state, state, speed):
  """A stateful criterion's state after a classifier ran on a sample.

  Args:
    new_state: tuple of [batch] tensors, what `step` returned.
    state: tuple of [batch] tensors, the state before it.
    speed: float32 [batch] (or broadcastable).

  Returns:
    tuple: new_state where the sample's students run; the old (fresh) state
    where its speed skips them, so a speed-0 sample sharing a batch with
    faster ones answers as if alone (skipped students never agree).
  """
  run = students_run(speed)
  return tuple(tf.where(run, n, o) for n, o in zip(new_state, state))


def _patience_score(agreements, num_layers):
  if num_layers < 2:
    return tf.ones(tf.shape(agreements))
  return 1.0 - tf.cast(agreements, tf.float32) / float(num_layers - 1)

