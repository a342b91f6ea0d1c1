"""kill -9 in the middle of phase 1 or phase 2, then the same command
again: the run resumes from its last checkpoint and ends with exactly the
weights and results of an uninterrupted run (only the wall time differs)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastbert_tf import testing

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 64 examples, batch 8: 8 steps per epoch; 2 + 2 epochs; a checkpoint
# every 3 steps (and at every epoch end).
FLAGS = ("--preset=test_tiny", "--vocab_size=40", "--max_seq_length=16",
         "--batch_size=8", "--finetune_epochs=2", "--distill_epochs=2",
         "--finetune_learning_rate=1e-3", "--checkpoint_every_steps=3",
         "--speeds=0,0.5")
TIMING = ("train_seconds",)


def _train(data_dir, model_dir, kill_at=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(
      [*testing.python_m("fastbert_tf.train", kill_at), f"--data={data_dir}",
       f"--model_dir={model_dir}", *FLAGS], cwd=ROOT, capture_output=True,
      text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return testing.write_letter_task(tmp_path_factory.mktemp("data"),
                                 train=64, dev=16, test=24)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("uninterrupted")
  result = _train(data_dir, model_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir


def _weights(model_dir):
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model, _ = saving.load_model(str(model_dir))
  return model.get_weights()


def _results(model_dir):
  results = json.loads((model_dir / "results.json").read_text())
  return {k: v for k, v in results.items() if k not in TIMING}


@pytest.mark.parametrize("kill_at,phase_dir", [
    ("finetune:12", "finetune"),   # mid epoch 2 of phase 1
    ("distill:6", "distill"),      # mid epoch 1 of phase 2
])
def test_killed_run_resumes_to_the_uninterrupted_result(
    data_dir, uninterrupted, tmp_path, kill_at, phase_dir):
  model_dir = tmp_path / "model"
  killed = _train(data_dir, model_dir, kill_at=kill_at)
  assert killed.returncode in (-9, 137), killed.stderr[-2000:]
  # Nothing published yet; the phase's checkpoints are on disk.
  assert not (model_dir / "MANIFEST.json").exists()
  assert (model_dir / ".run" / phase_dir / "latest").is_dir()

  resumed = _train(data_dir, model_dir)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  step = int(kill_at.split(":")[1])
  assert f"Phase {phase_dir}: resumed from" in resumed.stderr
  assert f"(step {step} of 16" in resumed.stderr
  if phase_dir == "distill":
    assert "Phase finetune: finished in an earlier attempt" in resumed.stderr
  for ours, theirs in zip(_weights(model_dir), _weights(uninterrupted)):
    np.testing.assert_array_equal(ours, theirs)
  assert _results(model_dir) == _results(uninterrupted)
  assert not (model_dir / ".run").exists()


def test_a_damaged_checkpoint_is_named_not_a_traceback(data_dir, tmp_path):
  model_dir = tmp_path / "model"
  killed = _train(data_dir, model_dir, kill_at="finetune:6")
  assert killed.returncode in (-9, 137), killed.stderr[-2000:]
  latest = model_dir / ".run" / "finetune" / "latest"
  data_files = [p for p in latest.iterdir() if ".data-" in p.name]
  assert data_files
  for path in data_files:
    path.write_bytes(b"\0" * 16)
  rerun = _train(data_dir, model_dir)
  assert rerun.returncode == 1, rerun.stderr[-2000:]
  assert "Traceback" not in rerun.stderr
  errors = [l for l in rerun.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1 and "cannot restore this checkpoint" in errors[0]
  assert "ckpt-6" in errors[0] and "--overwrite" in errors[0]


def test_killed_during_publication_is_refused_then_finished(
    data_dir, uninterrupted, tmp_path):
  from fastbert_tf.errors import ModelDirError  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / "model"
  killed = _train(data_dir, model_dir, kill_at="publish:2")
  assert killed.returncode in (-9, 137), killed.stderr[-2000:]
  with pytest.raises(ModelDirError, match="unfinished training run"):
    saving.load_model(str(model_dir))
  resumed = _train(data_dir, model_dir)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  saving.verify(str(model_dir))
  for ours, theirs in zip(_weights(model_dir), _weights(uninterrupted)):
    np.testing.assert_array_equal(ours, theirs)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
