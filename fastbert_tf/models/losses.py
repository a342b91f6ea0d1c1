"""Losses of the two training phases, per example.

Per-example values let `train_step` average over the GLOBAL batch
(`tf.nn.compute_average_loss`), which keeps gradients right for any number
of replicas, and weight examples (`sample_weight`). Everything here runs in
float32 whatever the model's compute dtype: logits are cast first.
"""

import tensorflow as tf

KL_DIRECTIONS = ("teacher_student", "student_teacher")
REDUCTIONS = ("sum", "mean")


def cross_entropy(labels, logits):
  """Per-example sparse cross-entropy.

  Args:
    labels: int [batch].
    logits: float [batch, num_classes] (any float dtype).

  Returns:
    float32 [batch].
  """
  return tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def exit_loss_weights(phase, num_layers):
  """The weight of each classifier's cross-entropy in a supervised phase
  that trains every exit.

  "joint" sums them (the paper's no-self-distillation ablation);
  "tune_exits" takes PABEE's weighted mean (Zhou et al. 2020), classifier
  i weighing i / (1 + ... + L): the deep layers, whose features the
  shallow exits cannot reach, keep most of the pull on the backbone.

  Args:
    phase: "joint" or "tune_exits".
    num_layers: int L.

  Returns:
    list of L Python floats.

  >>> exit_loss_weights("tune_exits", 3)
  [0.16666666666666666, 0.3333333333333333, 0.5]
  """
  if phase == "joint":
    return [1.0] * num_layers
  if phase == "tune_exits":
    total = num_layers * (num_layers + 1) / 2
    return [i / total for i in range(1, num_layers + 1)]
  raise ValueError(f"no exit loss weights for phase {phase!r}")


def kl_divergence(p_logits, q_logits):
  """Per-example KL(p || q), computed from logits in log space.

  Args:
    p_logits, q_logits: float [batch, num_classes].

  Returns:
    float32 [batch].
  """
  log_p = tf.nn.log_softmax(tf.cast(p_logits, tf.float32))
  log_q = tf.nn.log_softmax(tf.cast(q_logits, tf.float32))
  return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), -1)


def check_distillation(direction, reduction):
  """Raises ValueError naming the bad option; returns the pair."""
  if direction not in KL_DIRECTIONS:
    raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}, got "
                     f"{direction!r}")
  if reduction not in REDUCTIONS:
    raise ValueError(f"student_reduction must be one of {REDUCTIONS}, got "
                     f"{reduction!r}")
  return direction, reduction


def distillation_loss(teacher_logits, student_logits,
                      direction="teacher_student", reduction="sum",
                      teacher_temperature=1.0):
  """Self-distillation loss per example: KL between the teacher and every
  student.

  Args:
    teacher_logits: float [batch, num_classes]; treated as a constant.
    student_logits: list of float [batch, num_classes], one per student.
    direction: "teacher_student" = KL(teacher || student), what the authors'
      code computes (PyTorch KLDivLoss(log_softmax(student), softmax(teacher)));
      "student_teacher" = KL(student || teacher), as the paper writes it.
    reduction: "sum" over students (the authors') or "mean".
    teacher_temperature: float > 0; the teacher's logits are divided by it
      before the softmax: < 1 sharpens the soft targets (an unsure teacher
      then teaches surer students, who exit earlier), 1 is the paper's.

  Returns:
    float32 [batch].
  """
  check_distillation(direction, reduction)
  if not teacher_temperature > 0:
    raise ValueError(f"teacher_temperature must be > 0, got "
                     f"{teacher_temperature}")
  teacher_logits = tf.stop_gradient(teacher_logits)
  if teacher_temperature != 1.0:
    teacher_logits = teacher_logits / teacher_temperature
  terms = []
  for logits in student_logits:
    if direction == "teacher_student":
      terms.append(kl_divergence(teacher_logits, logits))
    else:
      terms.append(kl_divergence(logits, teacher_logits))
  total = tf.add_n(terms)
  return total if reduction == "sum" else total / len(terms)
