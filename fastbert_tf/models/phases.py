"""The training phases: what each one trains and how.

A phase is chosen with `model.phase_config = PhaseConfig(...)` before
`model.compile(optimizer)`; compile itself stays Keras' own. Freezing is
done by selecting variables, never by relying on gradients being None: a
phase's optimizer only ever sees the variables listed here.
"""

import dataclasses

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
