"""Which variables train in which phase.

Freezing is done by selecting variables, never by relying on gradients being
None: a phase's optimizer only ever sees the variables listed here.
"""

PHASES = ("finetune", "distill", "joint")


def check_phase(phase):
  if phase not in PHASES:
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
  return phase


def trainable_variables(model, phase):
  """The variables a phase updates.

  Args:
    model: a FastBertClassifier.
    phase: "finetune" (backbone + teacher; the paper's phase 1), "distill"
      (students only; phase 2) or "joint" (everything, every classifier on the
      labels: the paper's "without self-distillation" ablation).

  Returns:
    list of keras.Variable.
  """
  check_phase(phase)
  if phase == "finetune":
    return (list(model.backbone.trainable_variables) +
            list(model.teacher.trainable_variables))
  if phase == "distill":
    return [v for s in model.students for v in s.trainable_variables]
  return list(model.trainable_variables)
