"""README.md stays true: its Python blocks run (on a tiny model standing in
for runs/quickstart) and every flag its shell commands pass exists."""

import functools
import os
import re
import shlex
import subprocess
import sys

import pytest

from fastbert_tf.testing import saved

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# FASTBERT_README: check another copy (e.g. an edited one) instead.
README = os.environ.get("FASTBERT_README", os.path.join(ROOT, "README.md"))
# Beam's own pipeline options, passed through by fastbert_tf.beam.run.
BEAM_OPTIONS = {"runner", "direct_num_workers", "project", "region",
                "temp_location", "setup_file", "flink_master",
                "environment_type", "spark_master_url"}


def _blocks(language):
  with open(README, encoding="utf-8") as f:
    text = f.read()
  return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


@pytest.fixture(scope="module")
def quickstart_stand_in(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("quickstart"))
  saved.save_tiny_model(path, names=("neg", "neutral", "pos"))
  return path


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_block_runs(index, quickstart_stand_in, capsys):
  code = _blocks("python")[index].replace("runs/quickstart",
                                          quickstart_stand_in)
  exec(compile(code, f"README.md python block {index + 1}", "exec"), {})  # pylint: disable=exec-used
  del capsys


def _commands():
  """(entry point, [flag names]) of every command in the bash blocks."""
  found = []
  for block in _blocks("bash"):
    pending = ""  # a quoted string may span lines (e.g. TF_CONFIG='{...}')
    for line in block.replace("\\\n", " ").splitlines():
      pending += line + "\n"
      try:
        tokens = shlex.split(pending, comments=True)
      except ValueError:
        continue
      pending = ""
      tokens = [t for t in tokens if t not in ("&", "&&")]
      entry = _entry(tokens)
      if entry:
        names = [t[2:].split("=")[0] for t in tokens
                 if t.startswith("--") and t != "--"]
        found.append((entry, names))
  return found


def _entry(tokens):
  for i, token in enumerate(tokens):
    if token.startswith("fastbert-"):
      return token
    if token == "-m" and i + 1 < len(tokens):
      return "-m " + tokens[i + 1] if tokens[i + 1].startswith(
          "fastbert_tf") else None
    if token.startswith("export/") and token.endswith(".py"):
      return token
  return None


@functools.lru_cache(maxsize=None)
def _defined_flags(entry):
  if entry.startswith("fastbert-"):
    import runpy  # pylint: disable=g-import-not-at-top
    import setuptools  # pylint: disable=g-import-not-at-top
    captured = {}
    real, setuptools.setup = setuptools.setup, captured.update
    try:
      runpy.run_path(os.path.join(ROOT, "setup.py"))
    finally:
      setuptools.setup = real
    target = dict(l.split("=") for l in
                  captured["entry_points"]["console_scripts"])[entry]
    module, function = target.split(":")
    argv = [sys.executable, "-c",
            f"import sys; sys.argv = [{entry!r}, '--helpfull']; "
            f"from {module} import {function}; {function}()"]
  elif entry.startswith("-m "):
    argv = [sys.executable, "-m", entry[3:], "--helpfull"]
  else:
    argv = [sys.executable, entry, "--helpfull"]
  out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
  names = set(re.findall(r"^\s+--(?:\[no\])?([A-Za-z_0-9]+)", out.stdout,
                         re.M))
  assert names, (entry, out.stdout[-2000:], out.stderr[-2000:])
  return names


@pytest.mark.parametrize("entry,names", _commands(),
                         ids=[f"{e}:{','.join(n)}"[:80] for e, n in
                              _commands()])
def test_shell_command_flags_exist(entry, names):
  defined = _defined_flags(entry)
  if "beam.run" in entry or entry == "fastbert-beam":
    defined = defined | BEAM_OPTIONS
  unknown = [n for n in names if n not in defined and
             not (n.startswith("no") and n[2:] in defined)]
  assert not unknown, f"README: {entry} has no flags {unknown}"


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
