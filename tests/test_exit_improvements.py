"""The improvements over the paper's recipe (issue 20, item 5): per-exit
temperature calibration (`--calibrate_exits`, `--phase=calibrate`), a
sharper teacher for self-distillation (`--distill_temperature`) and
depth-weighted tuning of every exit, backbone included
(`--phase=tune_exits`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import losses
from fastbert_tf.models import phases
from fastbert_tf.models import saving
from fastbert_tf.training import calibration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fit_temperature_recovers_an_overconfident_scale():
  """Labels drawn from softmax(z); the classifier reports 3z: T = 3."""
  rng = np.random.default_rng(0)
  z = rng.normal(size=(4000, 4)) * 1.5
  p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
  labels = np.array([rng.choice(4, p=row) for row in p])
  fitted = calibration.fit_temperature(3.0 * z, labels)
  assert fitted == pytest.approx(3.0, rel=0.08)
  # ... and an underconfident one gets T < 1.
  assert calibration.fit_temperature(0.5 * z, labels) == pytest.approx(
      0.5, rel=0.08)
  # The fitted T minimises the NLL.
  nll = lambda t: calibration.negative_log_likelihood(3.0 * z, labels, 1 / t)
  assert nll(fitted) <= min(nll(fitted * 1.1), nll(fitted / 1.1))


def test_temperatures_scale_the_exit_scores_and_round_trip(tmp_path):
  model = testing.tiny_model(seed=3, sharpen=4.0, dropout=0.0)
  inputs = testing.random_inputs(16, 8, len(testing.TINY_VOCAB), seed=1)
  before = model(inputs, training=False).numpy()
  temperatures = [2.0, 0.5, 4.0]
  model.set_exit_temperatures(temperatures)
  after = model(inputs, training=False).numpy()
  np.testing.assert_allclose(after, before / np.array(temperatures)[:, None],
                             rtol=1e-5)
  # The exit loop reads the scaled logits: hotter exits are less sure.
  table = flops_lib.flops_table(model.get_config(), 8)
  args = (inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"],
          tf.constant(0.5))
  calibrated = early_exit.compiled_early_exit(model, table)(*args)
  assert model.get_config()["exit_temperatures"] == temperatures
  # Saved and loaded: the temperatures are part of config.json.
  saving.save_model(model, TextEncoder(testing.TINY_VOCAB, 8), str(tmp_path))
  loaded, _ = saving.load_model(str(tmp_path))
  assert loaded.exit_temperatures == temperatures
  model.set_exit_temperatures(None)
  plain = early_exit.compiled_early_exit(model, table)(*args)
  np.testing.assert_allclose(model(inputs, training=False).numpy(), before,
                             rtol=1e-6)
  assert not np.array_equal(calibrated["uncertainty"].numpy(),
                            plain["uncertainty"].numpy())
  with pytest.raises(ValueError, match="exit_temperatures"):
    model.set_exit_temperatures([1.0, 0.0, 1.0])


def test_calibrate_lowers_every_exit_nll():
  model = testing.tiny_model(seed=3, sharpen=8.0, dropout=0.0)
  inputs = testing.random_inputs(64, 8, len(testing.TINY_VOCAB), seed=2)
  labels = np.arange(64, dtype=np.int32) % 3
  dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)
  raw, _ = calibration.collect_logits(model, dataset)
  temperatures = calibration.calibrate(model, dataset)
  assert model.exit_temperatures == temperatures
  calibrated, _ = calibration.collect_logits(model, dataset)
  for i in range(3):
    before = calibration.negative_log_likelihood(raw[:, i], labels, 1.0)
    after = calibration.negative_log_likelihood(calibrated[:, i], labels, 1.0)
    assert after < before - 1e-3, i  # sharpened random heads: overconfident
  # Calibrating again starts from T = 1: the same temperatures.
  assert calibration.calibrate(model, dataset) == pytest.approx(temperatures)


def test_distill_temperature_sharpens_the_teacher_targets():
  teacher = tf.constant([[2.0, 0.0, -1.0], [0.1, 0.3, 0.0]])
  student = tf.constant([[0.5, 0.2, 0.1], [1.0, -1.0, 0.0]])
  plain = losses.distillation_loss(teacher, [student])
  sharp = losses.distillation_loss(teacher, [student],
                                   teacher_temperature=0.5)
  np.testing.assert_allclose(
      sharp.numpy(), losses.distillation_loss(teacher * 2.0, [student]).numpy(),
      rtol=1e-6)
  assert not np.allclose(plain.numpy(), sharp.numpy())
  with pytest.raises(ValueError, match="distill_temperature"):
    phases.PhaseConfig("distill", distill_temperature=0.0)


def test_distill_temperature_reaches_the_train_step():
  """The flag's PhaseConfig changes what phase 2 teaches."""
  import keras  # pylint: disable=g-import-not-at-top
  inputs = testing.random_inputs(8, 7, len(testing.TINY_VOCAB), seed=0)
  moved = []
  for temperature in (1.0, 0.25):
    model = testing.tiny_model(seed=1, sharpen=2.0, dropout=0.0)
    model.phase_config = phases.PhaseConfig(
        "distill", distill_temperature=temperature)
    model.compile(keras.optimizers.SGD(0.5))
    model.train_on_batch(inputs)
    moved.append(model.students[0].logits_dense.kernel.numpy())
  assert not np.allclose(moved[0], moved[1])


def test_tune_exits_weighs_each_exit_by_its_depth():
  weights = losses.exit_loss_weights("tune_exits", 4)
  np.testing.assert_allclose(weights, [0.1, 0.2, 0.3, 0.4])
  assert losses.exit_loss_weights("joint", 3) == [1.0, 1.0, 1.0]
  with pytest.raises(ValueError, match="finetune"):
    losses.exit_loss_weights("finetune", 3)


def test_tune_exits_loss_is_the_depth_weighted_cross_entropy():
  """The train step's loss is sum_i i/sum(1..L) * CE_i, not joint's sum."""
  model = testing.tiny_model(seed=1, dropout=0.0)
  features = testing.random_inputs(6, 7, len(testing.TINY_VOCAB), seed=0)
  labels = tf.constant([0, 1, 0, 1, 1, 0])
  logits = model(features, training=False)
  per_layer = [losses.cross_entropy(labels, logits[:, i]).numpy()
               for i in range(model.num_layers)]
  weights = losses.exit_loss_weights("tune_exits", model.num_layers)
  expected = sum(w * ce for w, ce in zip(weights, per_layer))
  for phase, want in (("tune_exits", expected), ("joint", sum(per_layer))):
    model.phase_config = phases.PhaseConfig(phase)
    got = phases.supervised_losses(model, features, labels)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_tune_exits_trains_backbone_teacher_and_students():
  import keras  # pylint: disable=g-import-not-at-top
  model = testing.tiny_model(seed=1, dropout=0.0)
  features = testing.random_inputs(8, 7, len(testing.TINY_VOCAB), seed=0)
  labels = tf.constant([0, 1] * 4)
  parts = {"backbone": model.backbone, "teacher": model.teacher,
           "student_1": model.students[0]}
  before = {k: [v.numpy().copy() for v in p.trainable_variables]
            for k, p in parts.items()}
  model.phase_config = phases.PhaseConfig("tune_exits")
  model.compile(keras.optimizers.SGD(0.5))
  model.train_on_batch(features, labels)
  for name, part in parts.items():
    after = [v.numpy() for v in part.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(after, before[name])), (
        f"{name} did not move in tune_exits")


def _model_config(model_dir):
  config = json.loads((model_dir / "config.json").read_text())
  return config.get("config", config)


def _train(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "fastbert_tf.train", *args],
                        cwd=ROOT, capture_output=True, text=True, env=env,
                        timeout=600)


def _tiny_run_flags(tmp_path, model_dir):
  """Flags of a tiny CLI run on the letter task written under tmp_path."""
  (tmp_path / "data").mkdir()
  data_dir = testing.write_letter_task(tmp_path / "data", train=64, dev=24,
                                       test=16)
  return [f"--data={data_dir}", f"--model_dir={model_dir}",
          "--preset=test_tiny", "--vocab_size=40", "--max_seq_length=16",
          "--batch_size=8", "--finetune_epochs=1", "--distill_epochs=1",
          "--finetune_learning_rate=1e-3", "--speeds=0,0.5"]


@pytest.mark.large
def test_cli_calibrates_after_training_and_on_a_finished_model(tmp_path):
  model_dir = tmp_path / "model"
  common = _tiny_run_flags(tmp_path, model_dir)
  result = _train(*common, "--distill_temperature=0.5")
  assert result.returncode == 0, result.stderr[-3000:]
  config = _model_config(model_dir)
  assert config.get("exit_temperatures") is None, "not asked for"
  assert "--distill_temperature=0.5" in (model_dir / "flags.txt").read_text()
  result = _train(*common, "--phase=calibrate", "--calibrate_exits")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Exit temperatures fitted on 24 dev examples" in result.stderr
  config = _model_config(model_dir)
  temperatures = config["exit_temperatures"]
  assert len(temperatures) == 3 and all(t > 0 for t in temperatures)
  assert temperatures != [1.0, 1.0, 1.0]
  manifest = json.loads((model_dir / "MANIFEST.json").read_text())
  assert "calibrate" in json.dumps(manifest)
  assert (model_dir / "flags_calibrate.txt").exists()
  # --distill_temperature is phase 2's.
  refused = _train(*common, "--phase=finetune", "--distill_temperature=0.5")
  assert refused.returncode != 0
  assert "--distill_temperature is phase 2's" in refused.stderr


@pytest.mark.large
def test_cli_tunes_exits_on_a_finished_model_then_distills(tmp_path):
  model_dir = tmp_path / "model"
  common = _tiny_run_flags(tmp_path, model_dir)
  refused = _train(*common, "--phase=tune_exits")
  assert refused.returncode != 0, "no model to tune yet"
  assert _train(*common).returncode == 0
  weights = model_dir / "model.weights.h5"
  first = weights.read_bytes()
  result = _train(*common, "--phase=tune_exits", "--tune_exits_epochs=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Phase tune_exits: 2 epochs" in result.stderr
  assert weights.read_bytes() != first
  assert "--phase=tune_exits" in (model_dir / "flags_tune_exits.txt"
                                  ).read_text()
  assert "--phase=all" in (model_dir / "flags.txt").read_text(), (
      "phase 1's record was overwritten")
  manifest = json.loads((model_dir / "MANIFEST.json").read_text())
  assert "tune_exits" in json.dumps(manifest)
  result = _train(*common, "--phase=distill")
  assert result.returncode == 0, result.stderr[-3000:]

if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
