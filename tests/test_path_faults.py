"""Issue 21's reproductions, through the commands a user runs: nothing lost,
a damaged or disk-full run recoverable, one `error:` line instead of a
traceback, a second training into a live model directory refused."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fastbert_tf import Predictor
from fastbert_tf import testing
from fastbert_tf.export import exporter
from fastbert_tf.models import saving
from fastbert_tf.testing import filesystems
from fastbert_tf.testing import saved

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ("--preset=test_tiny", "--vocab_size=40", "--max_seq_length=16",
         "--batch_size=8", "--finetune_epochs=1", "--distill_epochs=1",
         "--finetune_learning_rate=1e-3", "--checkpoint_every_steps=3",
         "--speeds=0,0.5")


def _env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def _cli(module, *args, kill_at=None):
  return subprocess.run([*testing.python_m(module, kill_at), *args], cwd=ROOT,
                        capture_output=True, text=True, env=_env(),
                        timeout=900)


def _train(data_dir, model_dir, *more, kill_at=None):
  return _cli("fastbert_tf.train", f"--data={data_dir}",
              f"--model_dir={model_dir}", *FLAGS, *more, kill_at=kill_at)


def _one_error(result, *needles):
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1, result.stderr[-3000:]
  for needle in needles:
    assert needle in errors[0], errors[0]
  return errors[0]


def _snapshot(directory):
  return {n: saving.sha256(os.path.join(directory, n))
          for n in sorted(os.listdir(directory))
          if os.path.isfile(os.path.join(directory, n))}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return testing.write_letter_task(tmp_path_factory.mktemp("data"),
                                   train=48, dev=16, test=16)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("trained") / "model"
  result = _train(data_dir, model_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tiny"))
  model, encoder = saved.save_tiny_model(path)
  return path, model, encoder


# -- 1. data lost --------------------------------------------------------------
@pytest.mark.parametrize("ext,spelling", [("jsonl", "same"), ("tsv", "same"),
                                          ("jsonl", "dot"),
                                          ("jsonl", "symlink")])
def test_predict_output_equal_to_input_is_refused(tiny, tmp_path, ext,
                                                  spelling):
  source = tmp_path / f"x.{ext}"
  content = ('{"text": "a b"}\n' if ext == "jsonl" else "text_a\na b\n")
  source.write_text(content)
  output = {"same": str(source), "dot": f"{tmp_path}/./x.{ext}",
            "symlink": str(tmp_path / f"y.{ext}")}[spelling]
  if spelling == "symlink":
    os.symlink(source, output)
  result = _cli("fastbert_tf.predict", f"--model_dir={tiny[0]}",
                f"--input={source}", f"--output={output}")
  _one_error(result, f"--output={output}: the same file as --input")
  assert source.read_text() == content


def test_sweep_into_the_model_directory_is_refused(trained):
  before = _snapshot(trained)
  result = _cli("fastbert_tf.sweep", f"--model_dir={trained}",
                f"--output_dir={trained}", "--data=quickstart",
                "--target_speedup=1")
  _one_error(result, f"--output_dir={trained}: the same path as --model_dir")
  assert _snapshot(trained) == before
  saving.verify(str(trained))


# -- 2. a run that cannot be recovered -----------------------------------------
def test_damaged_staged_model_is_named_then_discarded_by_overwrite(
    data_dir, tmp_path):
  model_dir = tmp_path / "model"
  killed = _train(data_dir, model_dir, kill_at="distill:3")
  assert killed.returncode in (-9, 137), killed.stderr[-2000:]
  weights = model_dir / ".run" / "staged" / "model.weights.h5"
  weights.write_bytes(weights.read_bytes()[:1000])
  again = _train(data_dir, model_dir)
  _one_error(again, str(weights.parent), "cannot be read", "--overwrite")
  assert weights.exists()
  recovered = _train(data_dir, model_dir, "--overwrite")
  assert recovered.returncode == 0, recovered.stderr[-3000:]
  assert "discarding the damaged unfinished run" in recovered.stderr
  saving.verify(str(model_dir))
  assert not (model_dir / ".run").exists()


@pytest.mark.skipif(filesystems.can_mount() is not None,
                    reason=str(filesystems.can_mount()))
def test_full_disk_is_one_line_and_the_old_model_stays(data_dir, trained,
                                                       tmp_path):
  disk = str(tmp_path / "disk")
  with filesystems.small_disk(disk, "300k"):
    fresh = _train(data_dir, os.path.join(disk, "model"))
    _one_error(fresh, disk, "no space left")
  with filesystems.small_disk(disk, "700k"):
    old = os.path.join(disk, "model")
    shutil.copytree(trained, old)
    before = _snapshot(old)
    replaced = _train(data_dir, old, "--overwrite")
    _one_error(replaced, disk, "no space left")
    assert _snapshot(old) == before


# -- 4. tracebacks become one line ---------------------------------------------
def test_duplicate_vocab_tokens_are_one_line(data_dir, tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\na\n")
  result = _train(data_dir, tmp_path / "model", f"--vocab={vocab}")
  _one_error(result, f"{vocab}:8: token 'a' repeats line 6")
  assert not (tmp_path / "model").exists()


def test_hf_checkpoint_vocab_with_duplicates_is_one_line(data_dir, tiny,
                                                          tmp_path):
  checkpoint = tmp_path / "checkpoint"
  shutil.copytree(tiny[0], checkpoint)
  vocab = checkpoint / "vocab.txt"
  vocab.write_text(vocab.read_text() + "[CLS]\n")
  result = _train(data_dir, tmp_path / "model",
                  f"--init_checkpoint={checkpoint}")
  _one_error(result, f"{vocab}:", "repeats line")


def test_export_base_that_is_a_file_is_refused_before_training(data_dir,
                                                                tmp_path):
  base = tmp_path / "exports"
  base.write_text("x")
  result = _train(data_dir, tmp_path / "model", f"--export_base={base}")
  _one_error(result, f"--export_base={base}: is a file")
  assert "Phase finetune" not in result.stderr


@pytest.mark.parametrize("flag", ["--model_dir", "--export_base"])
def test_read_only_places_are_refused_before_training(data_dir, tmp_path,
                                                      flag):
  ro = str(tmp_path / "ro")
  with filesystems.read_only_dir(ro):
    target = os.path.join(ro, "x")
    args = ([f"--model_dir={target}"] if flag == "--model_dir" else
            [f"--model_dir={tmp_path / 'model'}", f"--export_base={target}"])
    result = _cli("fastbert_tf.train", f"--data={data_dir}", *FLAGS, *args)
    _one_error(result, f"{flag}={target}: cannot be created")


@pytest.mark.parametrize("where", ["missing_parent_file", "read_only"])
def test_predict_output_that_cannot_be_written(tiny, tmp_path, where):
  source = tmp_path / "in.txt"
  source.write_text("a b\n")
  ro = str(tmp_path / "ro")
  if where == "missing_parent_file":
    (tmp_path / "f").write_text("x")
    output = str(tmp_path / "f" / "out.jsonl")
    result = _cli("fastbert_tf.predict", f"--model_dir={tiny[0]}",
                  f"--input={source}", f"--output={output}")
    _one_error(result, "is a file; expected a directory")
    return
  with filesystems.read_only_dir(ro):
    output = os.path.join(ro, "out.jsonl")
    result = _cli("fastbert_tf.predict", f"--model_dir={tiny[0]}",
                  f"--input={source}", f"--output={output}")
    _one_error(result, f"--output={output}", "writable")


def test_predict_output_in_a_new_directory_is_written(tiny, tmp_path):
  source = tmp_path / "in.txt"
  source.write_text("a b\n")
  output = tmp_path / "new" / "dir" / "out.jsonl"
  result = _cli("fastbert_tf.predict", f"--model_dir={tiny[0]}",
                f"--input={source}", f"--output={output}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(output.read_text().splitlines()) == 1


def test_corrupt_newest_export_falls_back_to_the_good_one(tiny, tmp_path):
  _, model, encoder = tiny
  base = str(tmp_path / "exports")
  exporter.export_saved_model(model, encoder, base, version=1)
  shutil.copytree(os.path.join(base, "1"), os.path.join(base, "2"))
  with open(os.path.join(base, "2", "saved_model.pb"), "wb") as f:
    f.write(b"\x08\x01garbage")
  predictor = Predictor.load(base)
  assert predictor.source == os.path.join(base, "1")
  with pytest.raises(ValueError, match=r"2/saved_model.pb: cannot be loaded"):
    Predictor.load(os.path.join(base, "2"))
  source = tmp_path / "in.txt"
  source.write_text("a b\n")
  result = _cli("fastbert_tf.predict", f"--model_dir={base}",
                f"--input={source}", f"--output={tmp_path / 'out.jsonl'}")
  assert result.returncode == 0, result.stderr[-3000:]
  bad = _cli("fastbert_tf.predict", f"--model_dir={base}/2",
             f"--input={source}", f"--output={tmp_path / 'out.jsonl'}")
  _one_error(bad, "saved_model.pb: cannot be loaded")


def test_predictor_names_none_and_bad_bytes(tiny):
  predictor = Predictor.load(tiny[0])
  with pytest.raises(TypeError, match="texts must be a list of str, got "
                     "NoneType"):
    predictor.predict(None)
  with pytest.raises(ValueError, match=r"texts\[0\] is not valid UTF-8"):
    predictor.predict([b"\xff\xfe"])
  assert predictor.predict([b"caf\xc3\xa9"]).label.shape == (1,)


# -- 5. the lock ---------------------------------------------------------------
def test_second_training_into_a_live_model_dir_is_refused(data_dir, tmp_path):
  model_dir = tmp_path / "model"
  first = subprocess.Popen(
      [sys.executable, "-m", "fastbert_tf.train", f"--data={data_dir}",
       f"--model_dir={model_dir}", *FLAGS, "--finetune_epochs=20"],
      cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  try:
    run_file = model_dir / ".run" / "run.json"
    deadline = time.time() + 300
    while not run_file.exists() and first.poll() is None:
      assert time.time() < deadline
      time.sleep(0.5)
    second = _train(data_dir, model_dir, "--finetune_epochs=20")
    assert first.poll() is None, "the first run ended too soon to test"
    _one_error(second, f"{model_dir}: another training (pid {first.pid})")
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  # kill -9 left no stale lock: the next job takes it and would resume.
  from fastbert_tf.training.run_dir import RunDir  # pylint: disable=g-import-not-at-top
  run = RunDir(str(model_dir))
  with run.locked():
    assert os.path.isfile(run_file)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
