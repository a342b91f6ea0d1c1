"""The package works installed from a wheel, without the source checkout.

Builds the wheel from a copy of what setup.py packages (so nothing outside
fastbert_tf/ can leak in), installs it with --no-deps into a fresh
virtualenv that sees the dependencies already installed beside this
interpreter (but not its editable install of fastbert_tf), and runs every
console script's --help from a directory outside the checkout. A console
script whose target lives outside the package (fastbert-export used to run
export/export_saved_model.py) fails here.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig

import pytest

from fastbert_tf.testing import setup_py

# Builds and installs a wheel, starts every command: the `large` tier
# (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What setup.py reads besides the package.
SETUP_FILES = ("setup.py", "README.md", "requirements.txt")
# script -> a line its --help must print (its own flag).
HELP_LINE = {
    "fastbert-train": "--finetune_epochs",
    "fastbert-sweep": "--target_speedup",
    "fastbert-predict": "--input_format",
    "fastbert-export": "--export_base",
    "fastbert-serve": "--model_base_path",
    "fastbert-flops": "--max_seq_length",
    "fastbert-beam": "--input_format",
}


def _console_scripts():
  return list(setup_py.console_scripts(ROOT))


def _env():
  """The environment without the checkout on PYTHONPATH."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  return env


def _run(argv, cwd, timeout=600):
  return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True,
                        text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
  """A fresh virtualenv holding the wheel; returns (bin dir, cwd)."""
  tmp = tmp_path_factory.mktemp("wheel")
  source = tmp / "source"
  shutil.copytree(os.path.join(ROOT, "fastbert_tf"), source / "fastbert_tf",
                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                "BUILD.bazel"))
  for name in SETUP_FILES:
    shutil.copy(os.path.join(ROOT, name), source / name)
  dist = tmp / "dist"
  built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                "--no-build-isolation", "--no-index", "-q", "-w", str(dist),
                str(source)], cwd=str(tmp))
  assert built.returncode == 0, built.stderr[-3000:]
  wheel, = [str(dist / n) for n in os.listdir(dist) if n.endswith(".whl")]

  env_dir = tmp / "venv"
  made = _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)],
              cwd=str(tmp))
  assert made.returncode == 0, made.stderr
  python = str(env_dir / "bin" / "python")
  purelib = _run([python, "-c", "import sysconfig; "
                  "print(sysconfig.get_paths()['purelib'])"],
                 cwd=str(tmp)).stdout.strip()
  # The installed dependencies, as plain path entries: a .pth line that is
  # a directory adds it to sys.path without running that directory's own
  # .pth files, so this interpreter's editable finder for fastbert_tf (an
  # __editable__*.pth) stays out, and the new venv's site-packages, where
  # the wheel goes, comes first.
  outer = [p for p in site.getsitepackages() + [sysconfig.get_paths()[
      "purelib"]] if os.path.isdir(p)]
  with open(os.path.join(purelib, "outer_site_packages.pth"), "w",
            encoding="utf-8") as f:
    f.write("".join(f"{p}\n" for p in dict.fromkeys(outer)))
  installed = _run([sys.executable, "-m", "pip", "--python", python,
                    "install", "--no-deps", "--no-index", "-q", wheel],
                   cwd=str(tmp))
  assert installed.returncode == 0, installed.stderr[-3000:]
  outside = tmp / "elsewhere"
  outside.mkdir()
  return str(env_dir / "bin"), str(outside), str(env_dir)


def test_the_venv_imports_the_wheel_not_the_checkout(venv):
  bin_dir, cwd, env_dir = venv
  out = _run([os.path.join(bin_dir, "python"), "-c",
              "import json, fastbert_tf, fastbert_tf.commands; "
              "print(json.dumps([fastbert_tf.__file__, "
              "fastbert_tf.commands.__file__]))"], cwd=cwd)
  assert out.returncode == 0, out.stderr[-3000:]
  for path in json.loads(out.stdout):
    assert os.path.realpath(path).startswith(os.path.realpath(env_dir)), path
    assert not os.path.realpath(path).startswith(os.path.realpath(ROOT))


@pytest.mark.parametrize("script", _console_scripts())
def test_console_script_help_runs_from_the_wheel(venv, script):
  bin_dir, cwd, _ = venv
  out = _run([os.path.join(bin_dir, script), "--help"], cwd=cwd)
  # absl's --help prints the usage and exits with status 1 (app.usage).
  assert "Try --helpfull" in out.stdout, (out.returncode, out.stderr[-3000:])
  assert out.returncode == 1, (out.returncode, out.stderr[-3000:])
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  assert out.stdout.splitlines()[0].strip(), "the docstring heads --help"
  assert f"  {HELP_LINE[script]}" in out.stdout, out.stdout[-3000:]


def test_a_command_runs_to_completion_from_the_wheel(venv):
  bin_dir, cwd, _ = venv
  out = _run([os.path.join(bin_dir, "fastbert-flops"), "--preset=bert_base",
              "--max_seq_length=128", "--json"], cwd=cwd)
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads(out.stdout)["num_layers"] == 12


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
