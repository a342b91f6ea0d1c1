"""The exit rule restated in numpy: the tests' oracle for the one kernel in
fastbert_tf/inference/criteria.py (students_run, exits, advance_state).

The loop, the one-text XLA program and the sweep all call that kernel, so
they agree with each other even when it is wrong; tests hold each of them
against this independent restatement of the paper's rule instead.
"""

import numpy as np


def exit_layers(scores, speed):
  """1-based exit layer of every sample, from every classifier's score.

  Args:
    scores: float32 [n, L], each classifier's criterion score for each
      sample, as if every classifier had run (patience scores counted with
      the students running).
    speed: float, the threshold.

  Returns:
    int32 [n]: the first layer with score < speed; the teacher (L) for
    samples never confident, and for every sample at speed <= 0, where the
    students are skipped.
  """
  n, num_layers = scores.shape
  out = np.full([n], num_layers, np.int32)
  if speed <= 0:
    return out
  for i in range(n):
    for layer in range(num_layers - 1):
      if np.float32(scores[i, layer]) < np.float32(speed):
        out[i] = layer + 1
        break
  return out


def sample_flops(exit_layer, speed, cumulative, baseline):
  """FLOPs each sample costs: float64 [n].

  Args:
    exit_layer: int [n], 1-based.
    speed: float.
    cumulative: sequence of L floats, FLOPs of an exit after layer k.
    baseline: float, the plain model (layers + teacher, no students).
  """
  if speed <= 0:
    return np.full(len(exit_layer), float(baseline))
  return np.asarray(cumulative, np.float64)[np.asarray(exit_layer) - 1]
