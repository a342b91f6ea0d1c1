"""Losses of the two training phases."""

import tensorflow as tf

KL_DIRECTIONS = ("teacher_student", "student_teacher")
REDUCTIONS = ("sum", "mean")


def cross_entropy(labels, logits):
  """Mean sparse cross-entropy.

  Args:
    labels: int [batch].
    logits: float32 [batch, num_classes].

  Returns:
    float32 scalar.
  """
  return tf.reduce_mean(
      tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.cast(labels, tf.int32), logits=logits))


def kl_divergence(p_logits, q_logits):
  """Mean over the batch of KL(p || q), computed from logits in log space.

  Args:
    p_logits, q_logits: float32 [batch, num_classes].

  Returns:
    float32 scalar.
  """
  log_p = tf.nn.log_softmax(p_logits)
  log_q = tf.nn.log_softmax(q_logits)
  return tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), -1))


def distillation_loss(teacher_logits, student_logits, direction="teacher_student",
                      reduction="sum"):
  """Self-distillation loss: KL between the teacher and every student.

  Args:
    teacher_logits: float32 [batch, num_classes]; treated as a constant.
    student_logits: list of float32 [batch, num_classes], one per student.
    direction: "teacher_student" = KL(teacher || student), what the authors'
      code computes (PyTorch KLDivLoss(log_softmax(student), softmax(teacher)));
      "student_teacher" = KL(student || teacher), as the paper writes it.
    reduction: "sum" over students (the authors') or "mean".

  Returns:
    float32 scalar.
  """
  if direction not in KL_DIRECTIONS:
    raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")
  if reduction not in REDUCTIONS:
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
  teacher_logits = tf.stop_gradient(teacher_logits)
  terms = []
  for logits in student_logits:
    if direction == "teacher_student":
      terms.append(kl_divergence(teacher_logits, logits))
    else:
      terms.append(kl_divergence(logits, teacher_logits))
  total = tf.add_n(terms)
  return total if reduction == "sum" else total / len(terms)
