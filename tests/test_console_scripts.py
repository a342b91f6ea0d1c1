"""Console scripts (setup.py entry points): each resolves, its --help lists
the project's flags first; TensorFlow's no-GPU noise is quieted."""

import importlib
import os
import subprocess
import sys

import pytest

from fastbert_tf import tf_logs
from fastbert_tf.testing import setup_py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# script -> flags its --help must show (a few of each).
FLAGS = {
    "fastbert-train": ("--model_dir", "--finetune_epochs", "--init_checkpoint"),
    "fastbert-sweep": ("--model_dir", "--output_dir", "--exit_criterion"),
    "fastbert-predict": ("--model_dir", "--input", "--output", "--speed"),
    "fastbert-export": ("--model_dir", "--export_base", "--exit_criterion"),
    "fastbert-serve": ("--model_base_path", "--port"),
    "fastbert-flops": ("--preset", "--max_seq_length"),
    "fastbert-beam": ("--model", "--input", "--output", "--speed"),
}


def _entry_points():
  return setup_py.console_scripts(ROOT)


def test_every_script_resolves_to_a_function():
  scripts = _entry_points()
  assert set(scripts) == set(FLAGS)
  for target in scripts.values():
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize("script", sorted(FLAGS))
def test_help_shows_the_project_flags(script):
  module, function = _entry_points()[script].split(":")
  code = (f"import sys; sys.argv = [{script!r}, '--help']; "
          f"from {module} import {function}; {function}()")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  text = out.stdout  # absl exits 1 after --help
  assert "Try --helpfull" in text, out.stderr
  for flag in FLAGS[script]:
    assert f"  {flag}" in text, (flag, text[:2000])
  # The project's flags, not absl's own, are what --help lists.
  assert "--logtostderr" not in text
  assert text.splitlines()[0].strip(), "the module's docstring heads --help"


def test_quiet_tensorflow_logs(tmp_path, monkeypatch):
  monkeypatch.setattr(tf_logs, "_NVIDIA_DRIVER", (str(tmp_path / "none"),))
  env = {}
  assert tf_logs.quiet_tensorflow_logs(env) == "3"
  driver = tmp_path / "version"
  driver.write_text("NVRM")
  monkeypatch.setattr(tf_logs, "_NVIDIA_DRIVER", (str(driver),))
  env = {}
  assert tf_logs.quiet_tensorflow_logs(env) == "2"
  env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
  assert tf_logs.quiet_tensorflow_logs(env) == "0"



@pytest.mark.large
@pytest.mark.parametrize("module", ["fastbert_tf.sweep", "fastbert_tf.train"])
def test_python_m_hides_the_no_gpu_error_as_the_console_script(module,
                                                                tmp_path):
  """`python -m fastbert_tf.X` runs into TensorFlow without its C++ ERROR
  line about the missing GPU driver, as `fastbert-X` does."""
  if any(os.path.exists(p) for p in tf_logs._NVIDIA_DRIVER):  # pylint: disable=protected-access
    pytest.skip("a GPU driver is present: no cuInit error to hide")
  from fastbert_tf import testing  # pylint: disable=g-import-not-at-top
  from fastbert_tf.testing import saved  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / "model")
  saved.save_tiny_model(model_dir)
  data = testing.write_letter_task(tmp_path, train=8, dev=8, test=8)
  # Each command gets far enough to import TensorFlow (its oneDNN notice,
  # which no setting hides in TF 2.21, shows it did): the sweep runs, the
  # calibration stops at the model directory's missing manifest.
  args = {"fastbert_tf.sweep": [f"--output_dir={tmp_path / 'out'}",
                                "--speeds=0,1"],
          "fastbert_tf.train": ["--phase=calibrate", "--calibrate_exits",
                                "--max_seq_length=16", "--num_classes=3"]}
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run(
      [sys.executable, "-m", module, f"--model_dir={model_dir}",
       f"--data={data}", *args[module]], cwd=ROOT, capture_output=True,
      text=True, env=env, timeout=600)
  assert "oneDNN" in result.stderr, result.stderr[-2000:]
  assert "cuInit" not in result.stderr, result.stderr[-2000:]

if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
