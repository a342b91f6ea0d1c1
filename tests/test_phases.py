"""Which variables each training phase changes, and what it reports."""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.models import phases as model_phases
from fastbert_tf.training import optimization
from fastbert_tf.training import phases


def _compile(model, optimizer, phase, **options):
  model.phase_config = model_phases.PhaseConfig(phase, **options)
  model.compile(optimizer)


def _batch(model, seed=0):
  inputs = testing.random_inputs(8, 7, model.backbone.vocabulary_size,
                                 seed=seed)
  labels = np.arange(8, dtype=np.int32) % model.num_classes
  return inputs, labels


def _changed_after_one_step(model, phase):
  """Paths of the weights one train step of `phase` modified."""
  _compile(model, keras.optimizers.SGD(0.5), phase)
  before = {v.path: v.numpy().copy() for v in model.weights}
  inputs, labels = _batch(model)
  if phase == "distill":
    model.train_on_batch(inputs)  # phase 2 needs no labels
  else:
    model.train_on_batch(inputs, labels)
  return {v.path for v in model.weights
          if not np.array_equal(before[v.path], v.numpy())}


def _group(path):
  if "/backbone/" in path:
    return "backbone"
  if "teacher_classifier" in path:
    return "teacher"
  if "student_classifier" in path:
    return "students"
  return "other"


def _students(model):
  return [v.numpy().copy() for c in model.students for v in c.weights]


def test_changing_the_phase_after_compile_cannot_run_the_stale_step():
  """The traced finetune step must not silently run as 'joint' (students
  frozen, no error): a changed phase refuses to train until compile()."""
  model = testing.tiny_model(seed=1, dropout=0.0)
  inputs, labels = _batch(model)
  _compile(model, keras.optimizers.SGD(0.5), "finetune")
  model.train_on_batch(inputs, labels)
  model.phase_config = model_phases.PhaseConfig("joint")
  before = _students(model)
  with pytest.raises(ValueError, match="compile"):
    model.train_on_batch(inputs, labels)
  for a, b in zip(before, _students(model)):
    np.testing.assert_array_equal(a, b)
  # Compiled again, the new phase takes effect: the students move.
  model.compile(keras.optimizers.SGD(0.5))
  model.train_on_batch(inputs, labels)
  assert any(not np.array_equal(a, b)
             for a, b in zip(before, _students(model)))
  with pytest.raises(TypeError, match="PhaseConfig"):
    model.phase_config = "joint"


@pytest.mark.parametrize("phase,trained", [
    ("finetune", {"backbone", "teacher"}),
    ("distill", {"students"}),
    ("joint", {"backbone", "teacher", "students"}),
])
def test_every_variable_changes_only_in_its_phase(phase, trained):
  model = testing.tiny_model(seed=1, dropout=0.0)
  changed = _changed_after_one_step(model, phase)
  trainable = {v.path for v in model.trainable_weights}
  for path in trainable:
    if _group(path) in trained:
      assert path in changed, f"{phase}: {path} should have trained"
    else:
      assert path not in changed, f"{phase}: {path} must stay frozen"


def test_reinit_students_redraws_only_the_students():
  model = testing.tiny_model(seed=1, dropout=0.0)
  for student in model.students:  # stand-in for distilled weights
    student.set_weights([np.full_like(w, 0.5) for w in student.get_weights()])
  before = {v.path: v.numpy().copy() for v in model.weights}
  phases.reinit_students(model, seed=3)
  for v in model.weights:
    same = np.array_equal(before[v.path], v.numpy())
    if _group(v.path) == "students":
      assert not same, f"{v.path} kept its distilled weights"
      if "kernel" in v.path:
        assert np.std(v.numpy()) > 0, f"{v.path} is not a random draw"
    else:
      assert same, f"{v.path} must be left alone"
  # The draw depends on the seed alone.
  again = testing.tiny_model(seed=2, dropout=0.0)
  phases.reinit_students(again, seed=3)
  for a, b in zip(model.students, again.students):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
      np.testing.assert_array_equal(wa, wb)


def test_phase_variable_selection_partitions_the_model():
  model = testing.tiny_model()
  finetune = {v.path for v in model_phases.trainable_variables(model, "finetune")}
  distill = {v.path for v in model_phases.trainable_variables(model, "distill")}
  everything = {v.path for v in model.trainable_variables}
  assert finetune.isdisjoint(distill)
  assert finetune | distill == everything
  assert {v.path for v in model_phases.trainable_variables(model, "joint")} == everything
  with pytest.raises(ValueError, match="phase"):
    model_phases.trainable_variables(model, "warmup")


def test_teacher_dropout_switch_changes_the_soft_labels():
  """--teacher_dropout is what makes phase 2's soft labels noisy.

  The students are made blind to dropout (zero logit kernels: their logits
  are their biases, 0, whatever dropout does inside them), so the
  distillation loss depends on the teacher's soft labels alone:
  (L - 1) * KL(teacher || uniform) = (L - 1) * (log C - H(teacher)).
  """
  model = testing.tiny_model(seed=2, dropout=0.5)
  for student in model.students:
    student.logits_dense.kernel.assign(
        np.zeros(student.logits_dense.kernel.shape, np.float32))
  inputs, _ = _batch(model)
  teacher = tf.nn.softmax(model(inputs, training=False)[:, -1]).numpy()
  entropy = -(teacher * np.log(teacher)).sum(-1)
  clean_loss = (model.num_layers - 1) * np.mean(np.log(3) - entropy)
  losses = {}
  for teacher_dropout in (False, True):
    # lr 0: the weights never change, so only dropout can move the loss.
    _compile(model, keras.optimizers.SGD(0.0), "distill",
             teacher_dropout=teacher_dropout)
    losses[teacher_dropout] = [
        float(model.train_on_batch(inputs, return_dict=True)["loss"])
        for _ in range(3)]
  # Off: the soft labels are the inference-mode teacher's, step after step.
  np.testing.assert_allclose(losses[False], [clean_loss] * 3, rtol=1e-5)
  # On: each step draws new dropout masks in the backbone and teacher.
  assert len(set(losses[True])) == 3, losses
  assert all(abs(l - clean_loss) > 1e-4 for l in losses[True]), losses


def test_fit_reports_true_epoch_losses():
  model = testing.tiny_model(seed=3)
  inputs, labels = _batch(model)
  _compile(model, keras.optimizers.SGD(0.0), "finetune")
  history = model.fit(tf.data.Dataset.from_tensors((inputs, labels)).repeat(3),
                      epochs=2, verbose=0)
  expected = model.evaluate(inputs, labels, verbose=0, return_dict=True)
  assert history.history["loss"][0] > 0.0
  # lr 0 and dropout: training loss is near the eval teacher loss, not 0.0.
  assert history.history["loss"][1] == pytest.approx(expected["loss"], rel=0.5)
  assert set(expected) >= {"loss", "accuracy_layer_1", "accuracy_layer_3"}


def test_finetune_without_labels_is_an_error():
  model = testing.tiny_model()
  inputs, _ = _batch(model)
  _compile(model, keras.optimizers.SGD(0.1), "finetune")
  with pytest.raises(ValueError, match="needs labels"):
    model.train_on_batch(inputs)


def test_phase_config_rejects_unknown_switches():
  with pytest.raises(ValueError, match="kl_direction"):
    model_phases.PhaseConfig("distill", kl_direction="backwards")
  with pytest.raises(ValueError, match="phase"):
    model_phases.PhaseConfig("pretrain")
  with pytest.raises(ValueError, match="student_reduction"):
    model_phases.PhaseConfig("distill", student_reduction="max")


def test_compile_refuses_a_loss_or_metrics_it_would_ignore():
  model = testing.tiny_model()
  with pytest.raises(ValueError, match="metrics"):
    model.compile("sgd", metrics=["accuracy"])
  with pytest.raises(ValueError, match="loss"):
    model.compile("sgd", loss="mse")


def test_schedule_warms_up_then_decays_to_zero():
  schedule = optimization.LinearWarmupDecay(1e-3, total_steps=100,
                                            warmup_steps=10)
  values = [float(schedule(s)) for s in (0, 5, 10, 55, 100, 150)]
  assert values[0] == 0.0
  assert values[1] == pytest.approx(5e-4)
  assert values[2] == pytest.approx(1e-3)
  assert values[3] == pytest.approx(5e-4)
  assert values[4] == 0.0 and values[5] == 0.0
  # No warmup starts at the peak; a one-step phase runs it at the peak once.
  no_warmup = optimization.LinearWarmupDecay(1e-3, total_steps=4,
                                             warmup_steps=0)
  assert float(no_warmup(0)) == pytest.approx(1e-3)
  one_step = optimization.LinearWarmupDecay(1e-3, total_steps=1,
                                            warmup_steps=0)
  assert [float(one_step(s)) for s in (0, 1)] == [pytest.approx(1e-3), 0.0]


def test_optimizer_is_adamw_without_decay_on_norms_and_biases():
  optimizer = optimization.make_optimizer(2e-5, 1000, 0.1, 0.01)
  assert isinstance(optimizer, keras.optimizers.AdamW)
  assert optimizer.weight_decay == 0.01
  assert optimizer.epsilon == 1e-6  # the authors' AdamW epsilon
  schedule = optimizer._learning_rate  # pylint: disable=protected-access
  assert (schedule.total_steps, schedule.warmup_steps) == (1000, 100)
  model = testing.tiny_model()
  decayed = {v.name for v in model.trainable_variables
             if optimizer._use_weight_decay(v)}
  assert "kernel" in decayed
  assert not decayed & {"bias", "gamma", "beta"}


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
