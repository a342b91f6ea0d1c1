"""The per-example losses against closed forms in numpy: cross-entropy, and
self-distillation's KL in each direction and reduction."""

import sys

import numpy as np
import pytest

from fastbert_tf.models import losses

TEACHER = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
STUDENTS = [np.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]], np.float32),
            np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 4.0]], np.float32)]


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _kl(p_logits, q_logits):
  """KL(p || q) per row, float64."""
  p, q = _softmax(p_logits.astype(np.float64)), _softmax(
      q_logits.astype(np.float64))
  return (p * (np.log(p) - np.log(q))).sum(-1)


@pytest.mark.parametrize("direction,reduction", [
    ("teacher_student", "sum"), ("teacher_student", "mean"),
    ("student_teacher", "sum"), ("student_teacher", "mean")])
def test_distillation_loss_is_the_named_kl(direction, reduction):
  # KL is not symmetric for these logits (checked below), so a swapped
  # direction cannot pass.
  per_student = [_kl(TEACHER, s) if direction == "teacher_student"
                 else _kl(s, TEACHER) for s in STUDENTS]
  want = np.sum(per_student, 0)
  if reduction == "mean":
    want = want / len(STUDENTS)
  got = losses.distillation_loss(TEACHER, STUDENTS, direction, reduction)
  np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
  assert np.abs(_kl(TEACHER, STUDENTS[0]) - _kl(STUDENTS[0], TEACHER)).min() > 0.05


def test_the_default_direction_is_the_authors_kl_teacher_student():
  got = losses.distillation_loss(TEACHER, STUDENTS)
  np.testing.assert_allclose(
      got.numpy(), _kl(TEACHER, STUDENTS[0]) + _kl(TEACHER, STUDENTS[1]),
      rtol=1e-5)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
