"""The training phases: what each one trains and how.

A phase is chosen with `model.phase_config = PhaseConfig(...)` before
`model.compile(optimizer)`; compile itself stays Keras' own. Freezing is
done by selecting variables, never by relying on gradients being None: a
phase's optimizer only ever sees the variables listed here.
"""

import dataclasses

import tensorflow as tf

from fastbert_tf.models import losses

PHASES = ("finetune", "distill", "joint", "tune_exits")


def check_phase(phase):
  if phase not in PHASES:
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
  return phase


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
  """What `FastBertClassifier.train_step` does.

  Attributes:
    phase: "finetune" (backbone + teacher on the labels; the paper's phase
      1), "distill" (students only, taught by the frozen teacher; phase 2)
      or "joint" (every classifier on the labels, everything trains: the
      paper's "without self-distillation" ablation) or "tune_exits"
      (everything trains on the labels with the layer-weighted loss of
      PABEE, Zhou et al. 2020: classifier i weighs i / sum(1..L); run on a
      fine-tuned model before phase 2, it lets the lower layers learn to
      serve their exits, which phase 2's frozen backbone cannot).
    kl_direction: "teacher_student" (the authors' code) or
      "student_teacher" (the paper's formula).
    student_reduction: "sum" (the authors') or "mean" over students.
    teacher_dropout: run the frozen backbone and teacher with dropout in
      phase 2, as the authors' code does (noisier soft labels).
    freeze_token_embeddings: leave the word-embedding table out of
      finetune and joint (most of a 250k-vocabulary model's weights and,
      with AdamW's two moments, of its training memory).
    distill_temperature: phase 2 divides the teacher's logits by it before
      its softmax (losses.distillation_loss); < 1 sharpens the targets.

  Example:

  >>> model.phase_config = PhaseConfig("distill", kl_direction="student_teacher")
  >>> model.compile(keras.optimizers.AdamW(2e-4))
  """
  phase: str = "finetune"
  kl_direction: str = "teacher_student"
  student_reduction: str = "sum"
  teacher_dropout: bool = False
  freeze_token_embeddings: bool = False
  distill_temperature: float = 1.0

  def __post_init__(self):
    check_phase(self.phase)
    losses.check_distillation(self.kl_direction, self.student_reduction)
    if not self.distill_temperature > 0:
      raise ValueError(f"distill_temperature must be > 0, got "
                       f"{self.distill_temperature}")


def trainable_variables(model, config):
  """The variables a phase updates.

  Args:
    model: a FastBertClassifier.
    config: PhaseConfig (or a phase name, with default options).

  Returns:
    list of keras.Variable.
  """
  if isinstance(config, str):
    config = PhaseConfig(config)
  if config.phase == "distill":
    return [v for s in model.students for v in s.trainable_variables]
  if config.phase == "finetune":
    variables = (list(model.backbone.trainable_variables) +
                 list(model.teacher.trainable_variables))
  else:
    variables = list(model.trainable_variables)
  if config.freeze_token_embeddings:
    frozen = model.backbone.embeddings.token_embedding.embeddings
    variables = [v for v in variables if v is not frozen]
  return variables


def supervised_losses(model, features, labels):
  """Per-example cross-entropy of `model.phase_config`'s supervised phase:
  the teacher's (finetune), the sum over every classifier (joint) or
  their depth-weighted mean (tune_exits, losses.exit_loss_weights).

  Args:
    model: a FastBertClassifier.
    features: dict of int32 [batch, seq] model inputs.
    labels: int [batch].

  Returns:
    float32 [batch].
  """
  if model.phase_config.phase == "finetune":
    hidden = model.backbone(features, training=True)[-1]
    logits = model.teacher(hidden, features["padding_mask"], training=True)
    return losses.cross_entropy(labels, logits)
  logits = model(features, training=True)
  weights = losses.exit_loss_weights(model.phase_config.phase,
                                     model.num_layers)
  return tf.add_n([w * losses.cross_entropy(labels, logits[:, i])
                   for i, w in enumerate(weights)])


def distill_gradients(model, features, sample_weight, variables):
  """Phase 2's per-example loss and gradients.

  The frozen part runs outside the tape: no activations are kept for a
  backward pass through the backbone, which is what makes phase 2 cheap.

  Args:
    model: a FastBertClassifier.
    features: dict of int32 [batch, seq] model inputs.
    sample_weight: None or float [batch].
    variables: the students' variables (trainable_variables).

  Returns:
    (float32 [batch] per-example loss, list of gradients of `variables`).
  """
  config = model.phase_config
  hidden_states = model.backbone(features, training=config.teacher_dropout)
  mask = features["padding_mask"]
  teacher_logits = model.teacher(hidden_states[-1], mask,
                                 training=config.teacher_dropout)
  hidden_states = [tf.stop_gradient(h) for h in hidden_states[:-1]]
  with tf.GradientTape() as tape:
    student_logits = [s(h, mask, training=True)
                      for s, h in zip(model.students, hidden_states)]
    per_example = losses.distillation_loss(
        teacher_logits, student_logits, config.kl_direction,
        config.student_reduction, config.distill_temperature)
    loss = tf.nn.compute_average_loss(per_example,
                                      sample_weight=sample_weight)
    scaled = model.optimizer.scale_loss(loss)
  return per_example, tape.gradient(scaled, variables)
