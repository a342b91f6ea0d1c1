"""Commands apart from the library (issue 22, item 3): every command line
lives in fastbert_tf/commands/, nothing else imports it or reads absl flags,
the console scripts point into it, and the `python -m fastbert_tf.X` shims
hold nothing that could shadow a library module."""

import ast
import glob
import os
import sys

import pytest

from fastbert_tf.testing import setup_py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "fastbert_tf")
COMMANDS = os.path.join(PACKAGE, "commands")
# The documented `python -m` forms kept as shims (README.md, docs/).
SHIMS = ("train.py", "sweep.py", "predict.py", "flops.py",
         os.path.join("beam", "run.py"))


def _modules():
  return sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"),
                          recursive=True))


def _name(path):
  return os.path.relpath(path, ROOT)


def _tree(path):
  with open(path, encoding="utf-8") as f:
    return ast.parse(f.read(), path)


def _is_main_block(node):
  """`if __name__ == "__main__":`."""
  test = getattr(node, "test", None)
  return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and
          isinstance(test.left, ast.Name) and test.left.id == "__name__")


def _imports(tree):
  """Module names imported anywhere in the tree except under
  `if __name__ == "__main__":` (where a shim hands over to its command)."""
  names = []

  def visit(node):
    if _is_main_block(node):
      return
    if isinstance(node, ast.Import):
      names.extend(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.extend([node.module] +
                   [f"{node.module}.{a.name}" for a in node.names])
    for child in ast.iter_child_nodes(node):
      visit(child)

  visit(tree)
  return names


def _library():
  return [p for p in _modules() if not p.startswith(COMMANDS + os.sep)]


@pytest.mark.parametrize("path", _library(), ids=_name)
def test_library_never_imports_a_command_or_absl_flags(path):
  imports = _imports(_tree(path))
  commands = [n for n in imports if n.startswith("fastbert_tf.commands")]
  assert not commands, f"{_name(path)} imports {commands}"
  flags = [n for n in imports if n in ("absl.flags", "absl.flags.FLAGS")]
  assert not flags, (f"{_name(path)} imports absl flags: library code takes "
                     "arguments or a config object from a command")


@pytest.mark.parametrize("shim", SHIMS)
def test_python_m_shims_define_nothing(shim):
  """A shim is a docstring and a `__main__` block: importing it binds no
  name that could be mistaken for the library module of the same name
  (fastbert_tf.sweep beside fastbert_tf.inference.sweep)."""
  tree = _tree(os.path.join(PACKAGE, shim))
  body = tree.body
  assert isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                       ast.Constant)
  assert len(body) == 2 and _is_main_block(body[1]), (
      f"{shim}: only a docstring and `if __name__ == \"__main__\":`")


def test_no_other_root_module_shares_a_name_with_a_subpackage_module():
  root = {os.path.basename(p) for p in glob.glob(os.path.join(PACKAGE,
                                                              "*.py"))}
  nested = {os.path.basename(p) for p in _modules()
            if os.path.dirname(p) != PACKAGE}
  shims = {os.path.basename(s) for s in SHIMS if os.sep not in s}
  assert (root & nested) - shims - {"__init__.py"} == set()


def test_console_scripts_point_into_the_commands_package():
  for script, target in setup_py.console_scripts(ROOT).items():
    module, function = target.split(":")
    assert module.startswith("fastbert_tf.commands."), (script, target)
    path = os.path.join(ROOT, *module.split(".")) + ".py"
    assert os.path.isfile(path), (script, path)
    assert function == "run", (script, target)


def test_every_command_module_has_a_run():
  for path in glob.glob(os.path.join(COMMANDS, "*.py")):
    name = os.path.basename(path)[:-3]
    if name in ("__init__", "common", "flags", "server_flags"):
      continue
    functions = {n.name for n in _tree(path).body
                 if isinstance(n, ast.FunctionDef)}
    assert {"run", "main"} <= functions, name


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
