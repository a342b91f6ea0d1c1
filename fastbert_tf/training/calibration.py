"""Per-exit temperature calibration (`--calibrate_exits`).

Self-distillation teaches each student the teacher's distribution, but a
shallow student that mimics a confident teacher is often more confident than
it is right, and the exit rule trusts its confidence. Following Schwartz et
al. (2020, "The Right Tool for the Job"), each classifier gets one
temperature T_i fitted on the dev split's labels to minimise the negative
log-likelihood of softmax(logits_i / T_i) (Guo et al., 2017, temperature
scaling). Labels are unchanged (argmax is scale-free); only the scores the
exit criterion reads move: overconfident exits wait, underconfident ones
leave earlier. The temperatures are part of the model's config, so the
early-exit loop, exports and TFLite use them as they are.

Example:
  >>> temperatures = calibrate(model, dev_batches)  # sets them on the model
"""

import numpy as np
import tensorflow as tf

# The search interval of 1/T: temperatures from 0.05 to 20.
_MIN_INVERSE, _MAX_INVERSE = 0.05, 20.0


def collect_logits(model, dataset):
  """Every classifier's logits over a labelled dataset.

  Args:
    model: FastBertClassifier.
    dataset: tf.data.Dataset of (features, labels) (data.pipeline).

  Returns:
    (float32 [n, L, C] logits, int32 [n] labels), in dataset order.
  """
  ids = tf.TensorSpec([None, None], tf.int32)

  @tf.function(input_signature=[ids, ids, ids])
  def run(token_ids, segment_ids, padding_mask):
    return model(dict(token_ids=token_ids, segment_ids=segment_ids,
                      padding_mask=padding_mask), training=False)

  logits, labels = [], []
  for features, batch_labels in dataset:
    logits.append(run(features["token_ids"], features["segment_ids"],
                      features["padding_mask"]).numpy())
    labels.append(batch_labels.numpy())
  return (np.concatenate(logits).astype(np.float32),
          np.concatenate(labels).astype(np.int32))


def negative_log_likelihood(logits, labels, inverse_temperature):
  """Mean NLL of softmax(logits * inverse_temperature): float.

  Args:
    logits: float [n, C]; labels: int [n]; inverse_temperature: float.
  """
  z = logits.astype(np.float64) * inverse_temperature
  z -= z.max(axis=1, keepdims=True)
  log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels, iterations=60):
  """The temperature minimising the NLL of one classifier's logits.

  The NLL is convex in 1/T (a log-sum-exp of a linear function minus a
  linear one), so a golden-section search over 1/T finds the minimum.

  Args:
    logits: float [n, C]; labels: int [n].
    iterations: int, golden-section steps (60 shrink the interval ~1e12x).

  Returns:
    float T in [0.05, 20].
  """
  ratio = (np.sqrt(5.0) - 1.0) / 2.0
  lo, hi = _MIN_INVERSE, _MAX_INVERSE
  a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
  fa = negative_log_likelihood(logits, labels, a)
  fb = negative_log_likelihood(logits, labels, b)
  for _ in range(iterations):
    if fa < fb:
      hi, b, fb = b, a, fa
      a = hi - ratio * (hi - lo)
      fa = negative_log_likelihood(logits, labels, a)
    else:
      lo, a, fa = a, b, fb
      b = lo + ratio * (hi - lo)
      fb = negative_log_likelihood(logits, labels, b)
  return float(1.0 / ((lo + hi) / 2.0))


def calibrate(model, dataset):
  """Fits and sets every classifier's temperature on a labelled dataset.

  The model is evaluated with its temperatures reset to 1, so calibrating
  twice gives the same result.

  Args:
    model: FastBertClassifier (its temperatures are replaced).
    dataset: tf.data.Dataset of (features, labels), normally the dev split.

  Returns:
    list of L floats, the temperatures now set.
  """
  model.set_exit_temperatures(None)
  logits, labels = collect_logits(model, dataset)
  temperatures = [fit_temperature(logits[:, i], labels)
                  for i in range(logits.shape[1])]
  model.set_exit_temperatures(temperatures)
  return temperatures
