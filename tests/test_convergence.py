"""Training learns: each phase, on the harness's learnable tiny task.

The task (testing.letter_task): label 1 iff the text holds the letter "z".
A flipped loss sign, a label mapping that does not match the data, or a KL
that pushes the students away from the teacher fails one of these; the
variable-selection tests in test_phases.py cannot see any of those.

Budgets (steps of batch 16) and thresholds leave a margin over what this
recipe reaches: phase 1 takes the teacher from chance to 1.0 dev accuracy
in 96 steps, phase 2 the students' KL from ~0.7 to <0.01 and their
agreement with the teacher from ~0.5 to 1.0 in 64, joint every classifier
to 1.0 in 96.
"""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.data import pipeline
from fastbert_tf.data.sources import TextDataset
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.models import phases

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

STEPS_PER_EPOCH = 16  # 256 training texts, batch 16
PHASE1_EPOCHS = 6     # 96 steps
PHASE2_EPOCHS = 4     # 64 steps
MIN_DEV_ACCURACY = 0.9


def _data(n, seed):
  rows = testing.letter_task(n, seed=seed)
  return TextDataset([t for _, t in rows], None,
                     np.array([l for l, _ in rows], np.int32), "letters")


@pytest.fixture(scope="module")
def encoder():
  return TextEncoder(testing.TINY_VOCAB, 16)


@pytest.fixture(scope="module")
def train(encoder):
  return pipeline.make_dataset(_data(256, 1), encoder, 16, shuffle=True,
                               seed=0)


@pytest.fixture(scope="module")
def dev(encoder):
  return pipeline.make_dataset(_data(128, 2), encoder, 64)


def _model():
  keras.utils.set_random_seed(0)
  return testing.tiny_model(seed=0, dropout=0.1, num_classes=2)


def _fit(model, data, phase, epochs, learning_rate=3e-3):
  model.phase_config = phases.PhaseConfig(phase)
  model.compile(keras.optimizers.Adam(learning_rate))
  if phase == "distill":  # phase 2 reads texts only
    data = data.map(lambda features, labels: features)
  model.fit(data, epochs=epochs, verbose=0)


def _accuracies(model, dev):
  """Dev accuracy of every classifier, layer order (teacher last)."""
  results = model.evaluate(dev, verbose=0, return_dict=True)
  return [results[f"accuracy_layer_{i + 1}"] for i in range(model.num_layers)]


def _student_kl_and_agreement(model, dev):
  """Per student, mean KL(teacher || student) and the fraction of dev
  samples where its label is the teacher's."""
  logits = np.concatenate([model(f, training=False).numpy() for f, _ in dev])
  log_p = tf.nn.log_softmax(logits).numpy().astype(np.float64)
  teacher = log_p[:, -1:]
  kl = (np.exp(teacher) * (teacher - log_p)).sum(-1).mean(0)[:-1]
  labels = log_p.argmax(-1)
  agreement = (labels == labels[:, -1:]).mean(0)[:-1]
  return kl, agreement


@pytest.fixture(scope="module")
def finetuned(train, dev):
  """(model after phase 1, dev accuracies before it)."""
  model = _model()
  model.compile(keras.optimizers.Adam())  # evaluate() needs it
  before = _accuracies(model, dev)
  _fit(model, train, "finetune", PHASE1_EPOCHS)
  return model, before


def test_phase_1_teaches_the_teacher(finetuned, dev):
  model, before = finetuned
  after = _accuracies(model, dev)
  print("phase 1 dev accuracy before/after", before, after)
  # The untrained teacher is at chance; 96 steps take it past 90%.
  assert before[-1] < 0.7, before
  assert after[-1] >= MIN_DEV_ACCURACY, after


def test_phase_2_brings_every_student_to_the_teacher(finetuned, train, dev):
  model, _ = finetuned
  teacher = [w.numpy().copy() for w in model.teacher.weights]
  kl_before, agreement_before = _student_kl_and_agreement(model, dev)
  _fit(model, train, "distill", PHASE2_EPOCHS)
  kl_after, agreement_after = _student_kl_and_agreement(model, dev)
  print("phase 2 KL", kl_before, kl_after, "agreement", agreement_before,
        agreement_after)
  # Each student's KL to the teacher falls at least 4x (this recipe: ~100x)
  # and, from chance, it comes to answer as the teacher on 90% of dev.
  assert (kl_after < 0.25 * kl_before).all(), (kl_before, kl_after)
  assert (agreement_before < 0.7).all(), agreement_before
  assert (agreement_after >= MIN_DEV_ACCURACY).all(), agreement_after
  # The students learnt from the teacher; the teacher did not move.
  for before, weight in zip(teacher, model.teacher.weights):
    np.testing.assert_array_equal(before, weight.numpy())


def test_joint_training_teaches_every_classifier(train, dev):
  model = _model()
  _fit(model, train, "joint", PHASE1_EPOCHS)
  after = _accuracies(model, dev)
  print("joint dev accuracy", after)
  # Every classifier learns from the labels, the first student included.
  assert min(after) >= MIN_DEV_ACCURACY, after


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
