"""A model directory is a transaction: a finished model is never replaced
without --overwrite, never corrupted by a failed or killed run, and a file
that does not belong to it is named, not loaded."""

import os
import shutil
import subprocess
import sys

import pytest

from fastbert_tf import testing
from fastbert_tf.errors import ModelDirError
from fastbert_tf.models import saving

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ("--preset=test_tiny", "--vocab_size=40", "--max_seq_length=16",
         "--batch_size=8", "--finetune_epochs=1", "--distill_epochs=1",
         "--finetune_learning_rate=1e-3", "--speeds=0,0.5")


def _cli(*args, kill_at=None, module="fastbert_tf.train"):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([*testing.python_m(module, kill_at), *args], cwd=ROOT,
                        capture_output=True, text=True, env=env, timeout=900)


def _assert_one_line_error(result, *needles):
  assert result.returncode == 1, result.stderr[-2000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  for needle in needles:
    assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return testing.write_letter_task(tmp_path_factory.mktemp("data"),
                                 train=48, dev=16, test=16)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("trained") / "model"
  result = _cli(f"--data={data_dir}", f"--model_dir={model_dir}", *FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir


@pytest.fixture
def model_dir(trained, tmp_path):
  copy = tmp_path / "model"
  shutil.copytree(trained, copy)
  return copy


def _snapshot(directory):
  return {name: saving.sha256(os.path.join(directory, name))
          for name in sorted(os.listdir(directory))
          if os.path.isfile(os.path.join(directory, name))}


def test_a_finished_model_is_not_replaced_without_overwrite(data_dir,
                                                           model_dir):
  before = _snapshot(model_dir)
  result = _cli(f"--data={data_dir}", f"--model_dir={model_dir}", *FLAGS)
  _assert_one_line_error(result, str(model_dir), "holds a finished model",
                         "--overwrite")
  assert _snapshot(model_dir) == before
  assert not (model_dir / ".run").exists()


@pytest.mark.parametrize("bad,needle", [
    ("--preset=nope", "--preset: unknown preset 'nope'"),
    ("--config_json={tmp}/broken.json", "broken.json: not valid json"),
    ("--vocab={tmp}/missing_vocab.txt", "missing_vocab.txt"),
    # Found by bench/training_faults.py: -1 epochs trained nothing and
    # replaced the model; the others ended in absl's usage text.
    ("--finetune_epochs=-1", "--finetune_epochs=-1: out of range; expected"),
    ("--batch_size=0", "--batch_size=0: out of range; expected an integer "
     ">= 1"),
    ("--max_seq_length=1", "--max_seq_length=1: out of range; expected an "
     "integer >= 3"),
    ("--speeds=0,1.5", "--speeds=0,1.5: speed 1.5 is outside [0, 1]"),
])
def test_a_bad_flag_with_overwrite_writes_nothing(data_dir, model_dir,
                                                 tmp_path, bad, needle):
  (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
  bad, needle = bad.format(tmp=tmp_path), needle.format(tmp=tmp_path)
  before = _snapshot(model_dir)
  flags = [f for f in FLAGS if not f.startswith("--preset")] if (
      "preset" in bad or "config_json" in bad) else list(FLAGS)
  result = _cli(f"--data={data_dir}", f"--model_dir={model_dir}",
                "--overwrite", *flags, bad)
  _assert_one_line_error(result, needle)
  assert _snapshot(model_dir) == before
  assert not (model_dir / ".run").exists()
  saving.load_model(str(model_dir))


def test_model_dir_that_is_a_file_is_named(data_dir, tmp_path):
  path = tmp_path / "model"
  path.write_text("not a directory\n")
  result = _cli(f"--data={data_dir}", f"--model_dir={path}", *FLAGS)
  _assert_one_line_error(result, f"{path}: is a file; expected a directory")
  assert path.read_text() == "not a directory\n"


def test_predictor_names_the_problem_of_a_model_directory(model_dir):
  from fastbert_tf import Predictor  # pylint: disable=g-import-not-at-top
  (model_dir / ".run").mkdir()
  os.remove(model_dir / "MANIFEST.json")
  with pytest.raises(ModelDirError, match="unfinished training run"):
    Predictor.load(str(model_dir))
  os.rmdir(model_dir / ".run")
  os.remove(model_dir / "model.weights.h5")
  with pytest.raises(ModelDirError, match="model.weights.h5"):
    Predictor.load(str(model_dir))


def test_a_killed_overwrite_leaves_the_old_model_whole(data_dir, model_dir):
  before = _snapshot(model_dir)
  result = _cli(f"--data={data_dir}", f"--model_dir={model_dir}",
                "--overwrite", "--checkpoint_every_steps=2", *FLAGS,
                "--finetune_learning_rate=5e-3", kill_at="finetune:2")
  assert result.returncode in (-9, 137), result.stderr[-2000:]
  assert (model_dir / ".run").is_dir()
  assert _snapshot(model_dir) == before  # weights, vocab, results, flags
  saving.verify(str(model_dir))
  # The unfinished run has other settings than a plain rerun: refused,
  # with the differing flag named.
  rerun = _cli(f"--data={data_dir}", f"--model_dir={model_dir}", *FLAGS)
  _assert_one_line_error(rerun, "unfinished run",
                         "--finetune_learning_rate (0.005 -> 0.001)")


def test_a_changed_file_is_named_by_load_export_and_sweep(model_dir,
                                                         tmp_path):
  with open(model_dir / "vocab.txt", "a", encoding="utf-8") as f:
    f.write("extra\n")
  with pytest.raises(ModelDirError, match=r"vocab.txt: changed since run"):
    saving.load_model(str(model_dir))
  export = _cli(f"--model_dir={model_dir}",
                f"--export_base={tmp_path / 'exports'}",
                module="export.export_saved_model")
  assert export.returncode == 1 and "vocab.txt: changed" in export.stderr
  assert "Traceback" not in export.stderr
  sweep = _cli(f"--model_dir={model_dir}", "--data=quickstart",
               f"--output_dir={tmp_path / 'sweep'}",
               module="fastbert_tf.sweep")
  _assert_one_line_error(sweep, "vocab.txt: changed")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unreadable_weights_are_named(model_dir, damage):
  weights = model_dir / "model.weights.h5"
  data = weights.read_bytes()
  weights.write_bytes(data[: len(data) // 2] if damage == "truncate"
                      else b"not an h5 file" * 100)
  os.remove(model_dir / "MANIFEST.json")  # as a pre-manifest directory
  with pytest.raises(ModelDirError, match=r"model.weights.h5: cannot load"):
    saving.load_model(str(model_dir))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
