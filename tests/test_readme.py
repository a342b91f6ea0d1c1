"""README.md and docs/*.md stay true: their Python blocks run (on a tiny
model standing in for runs/quickstart), every flag their shell commands pass
exists, and every relative link points to a file that exists. Each check is
parametrized by file, so a failure names the doc."""

import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from fastbert_tf.testing import saved

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# FASTBERT_README: check another copy (e.g. an edited one) instead.
README = os.environ.get("FASTBERT_README", os.path.join(ROOT, "README.md"))
DOCS = [README] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
# Beam's own pipeline options, passed through by fastbert_tf.beam.run.
BEAM_OPTIONS = {"runner", "direct_num_workers", "project", "region",
                "temp_location", "setup_file", "flink_master",
                "environment_type", "spark_master_url"}


def _name(path):
  return os.path.relpath(path, ROOT) if path != README else "README.md"


def _text(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def _blocks(language, path):
  return re.findall(rf"^```{language}\n(.*?)^```", _text(path), re.M | re.S)


@pytest.fixture(scope="module")
def quickstart_stand_in(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("quickstart"))
  saved.save_tiny_model(path, names=("neg", "neutral", "pos"))
  return path


_PYTHON = [(path, i) for path in DOCS
           for i in range(len(_blocks("python", path)))]


@pytest.mark.parametrize("path,index", _PYTHON,
                         ids=[f"{_name(p)}:block{i + 1}" for p, i in _PYTHON])
def test_python_block_runs(path, index, quickstart_stand_in, capsys):
  code = _blocks("python", path)[index].replace("runs/quickstart",
                                                quickstart_stand_in)
  exec(compile(code, f"{_name(path)} python block {index + 1}", "exec"), {})  # pylint: disable=exec-used
  del capsys


def test_every_doc_is_checked():
  """The docs the README links to are the ones checked here."""
  names = {_name(p) for p in DOCS}
  for doc in ("training", "data", "serving", "python_api", "testing",
              "layout"):
    assert f"docs/{doc}.md" in names, names


def _commands(path):
  """(entry point, [flag names]) of every command in the bash blocks."""
  found = []
  for block in _blocks("bash", path):
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


_COMMANDS = [(path, entry, names) for path in DOCS
             for entry, names in _commands(path)]


@pytest.mark.parametrize(
    "path,entry,names", _COMMANDS,
    ids=[f"{_name(p)}:{e}:{','.join(n)}"[:100] for p, e, n in _COMMANDS])
def test_shell_command_flags_exist(path, entry, names):
  defined = _defined_flags(entry)
  if "beam.run" in entry or entry == "fastbert-beam":
    defined = defined | BEAM_OPTIONS
  unknown = [n for n in names if n not in defined and
             not (n.startswith("no") and n[2:] in defined)]
  assert not unknown, f"{_name(path)}: {entry} has no flags {unknown}"


def _links(path):
  """Relative link targets of a markdown file, outside code blocks."""
  text = re.sub(r"^```.*?^```", "", _text(path), flags=re.M | re.S)
  text = re.sub(r"`[^`\n]*`", "", text)
  targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
  return [t for t in targets
          if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize("path", DOCS, ids=[_name(p) for p in DOCS])
def test_relative_links_point_to_files(path):
  links = _links(path)
  missing = [t for t in links if not os.path.exists(
      os.path.join(os.path.dirname(path), t.split("#")[0]))]
  assert not missing, f"{_name(path)}: links to missing files {missing}"


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
