"""A small mutation tester for the early-exit and training logic.

  .venv/bin/python tools/mutate.py                    # every target below
  .venv/bin/python tools/mutate.py --files=fastbert_tf/inference/flops.py
  .venv/bin/python tools/mutate.py --list             # the mutants only

Each mutant is one small change to one line (a comparison, an arithmetic or
boolean operator, a constant, tf.logical_or/and, reduce_any/all,
maximum/minimum, argmax/argmin, a dropped `not`). A mutant is "killed"
when the module's tests fail on it, and "survives" when they pass: either
the tests miss a behaviour, or the change makes no difference
(tools/MUTATION.md records the survivors and why each is harmless).

How it stays fast: TensorFlow and the package are imported once; each
mutant runs in a forked child that executes the mutated source into the
already-imported module (classes keep their identity: their methods are
replaced in place, so existing instances and default arguments see the
mutation) and runs the module's tests with `pytest -x`. Nothing is written
to the source tree. Tests that start subprocesses would see the unmutated
files, so the test selection below leaves them out.
"""

import argparse
import ast
import copy
import json
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Module -> the in-process tests that cover it, quickest first (-x stops at
# the first failure, so most killed mutants cost one or two tests).
_CRITERIA = "tests/test_criteria.py::"
TARGETS = {
    "fastbert_tf/inference/uncertainty.py": [
        "tests/test_uncertainty.py",
        _CRITERIA + "test_scores_match_numpy_and_step_matches_scores",
        _CRITERIA + "test_topk_entropy_does_not_saturate_with_many_classes"],
    "fastbert_tf/inference/criteria.py": [
        "tests/test_exit_rule.py",
        _CRITERIA + "test_bad_criterion_is_rejected",
        _CRITERIA + "test_scores_match_numpy_and_step_matches_scores",
        _CRITERIA + "test_topk_entropy_does_not_saturate_with_many_classes",
        _CRITERIA + "test_loop_follows_each_criterion",
        "tests/test_early_exit.py::"
        "test_mixed_speeds_in_one_batch_equal_each_sample_alone"],
    "fastbert_tf/inference/flops.py": [
        "tests/test_flops.py::test_bert_base_matches_the_paper_within_0_1_percent",
        "tests/test_flops.py::test_paper_component_figures",
        "tests/test_flops.py::test_exit_costs_and_speedup",
        "tests/test_flops.py::test_flops_grow_with_sequence_length_and_classes",
        "tests/test_early_exit.py::test_flops_output_follows_the_exit_layer"],
    "fastbert_tf/inference/early_exit.py": [
        "tests/test_exit_rule.py", "tests/test_early_exit.py"],
    "fastbert_tf/inference/single_text.py": [
        "tests/test_exit_rule.py",
        "tests/test_single_text.py::"
        "test_answers_as_the_loop_for_every_text_and_speed",
        "tests/test_single_text.py::test_padding_to_a_bucket_changes_nothing",
        "tests/test_single_text.py::"
        "test_bucket_is_chosen_by_the_length_without_trailing_padding",
        "tests/test_single_text.py::"
        "test_buckets_past_the_position_table_are_cut_to_it"],
    "fastbert_tf/inference/sweep.py": [
        "tests/test_exit_rule.py::test_sweep_follows_the_oracle",
        "tests/test_sweep.py::test_parse_speeds",
        "tests/test_sweep.py::test_choose_speed",
        "tests/test_sweep.py::test_classifier_accuracy_and_uncertainty_bins",
        "tests/test_sweep.py::test_derived_numbers_equal_the_early_exit_loop",
        "tests/test_sweep.py::test_agrees_with_evaluate_collect_outputs"],
    "fastbert_tf/inference/evaluate.py": [
        "tests/test_sweep.py::test_agrees_with_evaluate_collect_outputs",
        "tests/test_sweep.py::test_derived_numbers_equal_the_early_exit_loop"],
    "fastbert_tf/training/optimization.py": [
        "tests/test_phases.py::test_schedule_warms_up_then_decays_to_zero",
        "tests/test_phases.py::"
        "test_optimizer_is_adamw_without_decay_on_norms_and_biases"],
    "fastbert_tf/models/losses.py": [
        "tests/test_phases.py", "tests/test_convergence.py"],
}

_COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                  ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
                  ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                  ast.IsNot: ast.Is}
_BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div,
                ast.Div: ast.Mult, ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult,
                ast.Mod: ast.FloorDiv}
_NAME_SWAPS = {"logical_or": "logical_and", "logical_and": "logical_or",
               "reduce_any": "reduce_all", "reduce_all": "reduce_any",
               "maximum": "minimum", "minimum": "maximum",
               "argmax": "argmin", "argmin": "argmax",
               "reduce_max": "reduce_min", "reduce_min": "reduce_max"}


def _docstring_nodes(tree):
  """Constant nodes that are docstrings (never mutated)."""
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
      body = node.body
      if body and isinstance(body[0], ast.Expr) and isinstance(
          body[0].value, ast.Constant):
        found.add(id(body[0].value))
  return found


def _mutations(node, skip):
  """(description, apply(node)) pairs for one AST node."""
  out = []
  if isinstance(node, ast.Compare):
    for i, op in enumerate(node.ops):
      if type(op) in _COMPARE_SWAPS:
        new = _COMPARE_SWAPS[type(op)]
        out.append((f"{type(op).__name__} -> {new.__name__}",
                    lambda n, i=i, new=new: n.ops.__setitem__(i, new())))
  elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
    new = _BINOP_SWAPS[type(node.op)]
    out.append((f"{type(node.op).__name__} -> {new.__name__}",
                lambda n, new=new: setattr(n, "op", new())))
  elif isinstance(node, ast.BoolOp):
    new = ast.Or if isinstance(node.op, ast.And) else ast.And
    out.append((f"{type(node.op).__name__} -> {new.__name__}",
                lambda n, new=new: setattr(n, "op", new())))
  elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
    out.append(("drop not", "unwrap"))
  elif (isinstance(node, ast.Constant) and id(node) not in skip and
        not isinstance(node.value, str)):
    value = node.value
    if isinstance(value, bool):
      out.append((f"{value} -> {not value}",
                   lambda n: setattr(n, "value", not n.value)))
    elif isinstance(value, int):
      out.append((f"{value} -> {value + 1}",
                   lambda n: setattr(n, "value", n.value + 1)))
    elif isinstance(value, float):
      new = 1.0 if value == 0.0 else value * 2.0
      out.append((f"{value} -> {new}",
                   lambda n, new=new: setattr(n, "value", new)))
  elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAPS:
    new = _NAME_SWAPS[node.attr]
    out.append((f"{node.attr} -> {new}",
                lambda n, new=new: setattr(n, "attr", new)))
  return out


def _in_function(tree):
  """ids of nodes inside a function body (module-level tables and
  constants are data, not logic: left alone)."""
  inside = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.Lambda)):
      for child in ast.walk(node):
        inside.add(id(child))
  return inside


def mutants(path):
  """Every mutant of a file: list of dicts (line, what, source)."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  tree = ast.parse(text)
  skip = _docstring_nodes(tree)
  inside = _in_function(tree)
  # Mutations are addressed by walk order, so each applies to a fresh copy.
  nodes = list(ast.walk(tree))
  lines = text.splitlines()
  found = []
  for index, node in enumerate(nodes):
    if id(node) not in inside or isinstance(node, ast.JoinedStr):
      continue
    for what, apply in _mutations(node, skip):
      mutated = copy.deepcopy(tree)
      target = list(ast.walk(mutated))[index]
      if apply == "unwrap":
        _replace_not(mutated, target)
      else:
        apply(target)
      found.append(dict(file=os.path.relpath(path, ROOT), line=node.lineno,
                        what=what, code=lines[node.lineno - 1].strip(),
                        source=ast.unparse(mutated)))
  return found


def _replace_not(tree, target):
  for parent in ast.walk(tree):
    for field, value in ast.iter_fields(parent):
      if value is target:
        setattr(parent, field, target.operand)
      elif isinstance(value, list):
        for i, item in enumerate(value):
          if item is target:
            value[i] = target.operand


def _module_name(path):
  return os.path.splitext(path)[0].replace("/", ".")


def _apply(module, source):
  """Executes `source` into `module`, keeping its classes' identities."""
  import keras  # pylint: disable=g-import-not-at-top
  old = dict(vars(module))
  register = keras.saving.register_keras_serializable
  keras.saving.register_keras_serializable = lambda *a, **k: (lambda x: x)
  try:
    exec(compile(source, module.__file__, "exec"), vars(module))  # pylint: disable=exec-used
  finally:
    keras.saving.register_keras_serializable = register
  for name, value in list(vars(module).items()):
    before = old.get(name)
    if isinstance(value, type) and isinstance(before, type) and (
        value is not before):
      for attr, member in vars(value).items():
        if attr not in ("__dict__", "__weakref__"):
          try:
            setattr(before, attr, member)
          except (AttributeError, TypeError):
            pass
      setattr(module, name, before)


def _run_child(module_name, source, tests, quiet=True):
  """Forks; the child applies `source` (None: unmutated) and runs pytest.
  Returns the pid."""
  pid = os.fork()
  if pid:
    return pid
  try:
    if quiet:
      devnull = os.open(os.devnull, os.O_WRONLY)
      os.dup2(devnull, 1)
      os.dup2(devnull, 2)
    import importlib  # pylint: disable=g-import-not-at-top
    import pytest  # pylint: disable=g-import-not-at-top
    if source is not None:
      _apply(importlib.import_module(module_name), source)
    code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
  except BaseException:  # pylint: disable=broad-except
    code = 99
  os._exit(int(code))  # pylint: disable=protected-access


def _wait(pid, timeout):
  """Exit status of the child, or "timeout" after killing it."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
      return os.waitstatus_to_exitcode(status)
    time.sleep(0.2)
  os.kill(pid, signal.SIGKILL)
  os.waitpid(pid, 0)
  return "timeout"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--files", default=",".join(TARGETS),
                      help="comma list of target modules (keys of TARGETS)")
  parser.add_argument("--list", action="store_true", help="list mutants only")
  parser.add_argument("--timeout", type=float, default=300,
                      help="seconds per mutant before it counts as killed")
  parser.add_argument("--output", default="",
                      help="write every result as json here")
  args = parser.parse_args()
  os.chdir(ROOT)
  sys.path.insert(0, ROOT)
  files = [f for f in args.files.split(",") if f]
  unknown = [f for f in files if f not in TARGETS]
  if unknown:
    parser.error(f"no tests are mapped for {unknown}; known: {list(TARGETS)}")
  plan = {f: mutants(os.path.join(ROOT, f)) for f in files}
  if args.list:
    for f, found in plan.items():
      for m in found:
        print(f"{f}:{m['line']}: {m['what']:<22} {m['code']}")
    print(sum(len(v) for v in plan.values()), "mutants")
    return 0
  # Import once in the parent (no TF op runs here, so forking is safe).
  import importlib  # pylint: disable=g-import-not-at-top
  import pytest  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import fastbert_tf.testing  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  for f in files:
    importlib.import_module(_module_name(f))
  results, start = [], time.time()
  for f, found in plan.items():
    tests = TARGETS[f]
    t0 = time.time()
    baseline = _wait(_run_child(_module_name(f), None, tests), args.timeout * 3)
    if baseline != 0:
      print(f"{f}: its tests fail unmutated ({baseline}); skipped", flush=True)
      continue
    print(f"{f}: {len(found)} mutants, tests {time.time() - t0:.0f}s",
          flush=True)
    for m in found:
      t0 = time.time()
      status = _wait(_run_child(_module_name(f), m["source"], tests),
                     args.timeout)
      verdict = "survived" if status == 0 else "killed"
      results.append(dict(file=f, line=m["line"], what=m["what"],
                          code=m["code"], status=status, verdict=verdict,
                          seconds=round(time.time() - t0, 1)))
      if verdict == "survived":
        print(f"  SURVIVED {f}:{m['line']}: {m['what']}   {m['code']}",
              flush=True)
      if args.output:  # after every mutant: a long run can be cut short
        with open(args.output, "w", encoding="utf-8") as out:
          json.dump(results, out, indent=1)
  killed = sum(r["verdict"] == "killed" for r in results)
  print(f"{killed} killed, {len(results) - killed} survived of "
        f"{len(results)} in {time.time() - start:.0f}s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
