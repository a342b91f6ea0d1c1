"""Which variables train in which phase, and a fresh start for phase 2.

Freezing is done by selecting variables, never by relying on gradients being
None: a phase's optimizer only ever sees the variables listed here.
"""

import keras
from absl import logging

PHASES = ("finetune", "distill", "joint")


def check_phase(phase):
  if phase not in PHASES:
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
  return phase


def trainable_variables(model, phase, freeze_token_embeddings=False):
  """The variables a phase updates.

  Args:
    model: a FastBertClassifier.
    phase: "finetune" (backbone + teacher; the paper's phase 1), "distill"
      (students only; phase 2) or "joint" (everything, every classifier on the
      labels: the paper's "without self-distillation" ablation).
    freeze_token_embeddings: leave the word-embedding table out of
      finetune and joint (it is most of a 250k-vocabulary model's weights
      and, with AdamW's two moments, of its training memory).

  Returns:
    list of keras.Variable.
  """
  check_phase(phase)
  if phase == "distill":
    return [v for s in model.students for v in s.trainable_variables]
  if phase == "finetune":
    variables = (list(model.backbone.trainable_variables) +
                 list(model.teacher.trainable_variables))
  else:
    variables = list(model.trainable_variables)
  if freeze_token_embeddings:
    frozen = model.backbone.embeddings.token_embedding.embeddings
    variables = [v for v in variables if v is not frozen]
  return variables


def reinit_students(model, seed):
  """Gives every student classifier fresh random weights from its own
  initializers, as a newly built model has them (phase 1 never trains the
  students), so phase 2 can be re-run on the same teacher. The backbone and
  the teacher classifier are left as they are.

  Args:
    model: a built FastBertClassifier.
    seed: int; the draw depends on it alone (it is not the very draw a full
      run started from: that one depends on everything built before).
  """
  keras.utils.set_random_seed(seed)
  # The model's own class: importing FastBertClassifier here would be a cycle.
  fresh = type(model).from_config(model.get_config())
  fresh.build()
  for student, new in zip(model.students, fresh.students):
    student.set_weights(new.get_weights())
  logging.info("Re-initialized %d student classifiers.", len(model.students))
