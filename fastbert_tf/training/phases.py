"""A fresh start for phase 2 (which variables each phase trains is
`fastbert_tf.models.phases`)."""

import keras
from absl import logging


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
  fresh = type(model).from_config(model.get_config())
  fresh.build()
  for student, new in zip(model.students, fresh.students):
    student.set_weights(new.get_weights())
  logging.info("Re-initialized %d student classifiers.", len(model.students))
