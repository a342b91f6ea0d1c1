"""The PATH class of bench/training_faults.py, enumerated, not imagined: for
every path argument of every command, each way a path can be wrong.

  read  arguments: missing; the wrong kind (a directory for a file...);
  write arguments: the wrong kind; a read-only place; the same file as
    another argument; inside a finished model that is not the command's;
    a disk that fills up (a 300 KiB tmpfs: root only, else skipped);
and the Predictor's own inputs (None, bytes that are not UTF-8, an export
base whose newest version is damaged). Every kind must end `clear` (one
`error:` line naming the flag or file) or `correct`, with the finished model
untouched.
"""

import os
import shutil

from bench import training_fault_kinds as base
from fastbert_tf.testing import filesystems

# command -> (module, {flag: role}); roles as fastbert_tf.paths'.
COMMANDS = {
    "train": ("fastbert_tf.train", {
        "--model_dir": "write_dir", "--export_base": "write_dir",
        "--vocab": "read_file", "--config_json": "read_file",
        "--distill_data": "read_file"}),
    "predict": ("fastbert_tf.predict", {
        "--model_dir": "read_dir", "--input": "read_file",
        "--output": "write_file"}),
    "sweep": ("fastbert_tf.sweep", {
        "--model_dir": "read_dir", "--output_dir": "write_dir"}),
    "export": ("export.export_saved_model", {
        "--model_dir": "read_dir", "--export_base": "write_dir"}),
}
# The argument each command's written path must not coincide with.
SAME_AS = {"train": "--export_base", "predict": "--input",
           "sweep": "--model_dir", "export": "--model_dir"}


def _defaults(ctx, command, scratch):
  """A valid command line for `command` as {flag: value}."""
  out = os.path.join(scratch, "out")
  if command == "train":
    return {"--data": ctx.data, "--model_dir": os.path.join(scratch, "m")}
  if command == "predict":
    return {"--model_dir": ctx.model, "--input": ctx.texts,
            "--output": os.path.join(scratch, "answers.jsonl")}
  if command == "sweep":
    return {"--model_dir": ctx.model, "--data": ctx.data,
            "--output_dir": out}
  return {"--model_dir": ctx.model, "--export_base": out}


def _run(ctx, command, args):
  module = COMMANDS[command][0]
  flags = [f"{k}={v}" for k, v in args.items()]
  extra = base.TINY if command == "train" else ()
  return ctx.run(module, *flags, *extra)


def _case_path(ctx, case, role, scratch):
  """The bad path for one case, and the needle its error must hold."""
  if case == "missing":
    return os.path.join(scratch, "nonexistent"), "does not exist"
  if case == "wrong_kind":
    if role == "read_file" or role == "write_file":
      return scratch, "is a directory"
    path = os.path.join(scratch, "a_file")
    with open(path, "w", encoding="utf-8") as f:
      f.write("x")
    return path, "is a file"
  if case == "inside_other_model":
    other = os.path.join(scratch, "other_model")
    shutil.copytree(ctx.pristine, other)
    return os.path.join(other, "x"), "inside the finished model directory"
  raise ValueError(case)


def _kind(command, flag, role, case):
  def kind(ctx):
    scratch = ctx.scratch(f"{command}{flag.replace('-', '_')}_{case}")
    args = _defaults(ctx, command, scratch)
    before = base.snapshot(ctx.model)
    if case in ("missing", "wrong_kind", "inside_other_model"):
      args[flag], needle = _case_path(ctx, case, role, scratch)
      return base.refused(_run(ctx, command, args), flag, needle,
                          untouched=ctx.model, before=before)
    if case == "same_as_other":
      other = SAME_AS[command]
      if command == "train":  # the export base is the model directory
        args[other] = args[flag]
      else:
        args[flag] = args[other]
      return base.refused(_run(ctx, command, args), "--", "same",
                          untouched=ctx.model, before=before)
    if case == "read_only":
      ro = os.path.join(scratch, "ro")
      with filesystems.read_only_dir(ro):
        args[flag] = os.path.join(ro, "x.jsonl" if role == "write_file"
                                  else "x")
        return base.refused(_run(ctx, command, args), flag,
                            untouched=ctx.model, before=before)
    if case == "disk_full":
      reason = filesystems.can_mount()
      if reason:
        return "correct", f"skipped: {reason}"
      disk = os.path.join(scratch, "disk")
      with filesystems.small_disk(disk, "300k"):
        args[flag] = os.path.join(disk, "x.jsonl" if role == "write_file"
                                  else "x")
        return base.refused(_run(ctx, command, args), "no space",
                            untouched=ctx.model, before=before)
    raise ValueError(case)
  kind.__name__ = f"path_{command}_{flag.strip('-')}_{case}"
  return kind


def _cases(command, flag, role):
  if role.startswith("read"):
    return ["missing", "wrong_kind"]
  cases = ["wrong_kind", "read_only", "inside_other_model"]
  if (command, flag) in (("train", "--model_dir"), ("predict", "--output"),
                         ("sweep", "--output_dir"), ("export",
                                                     "--export_base")):
    cases.append("same_as_other")
  if (command, flag) in (("train", "--model_dir"), ("export",
                                                    "--export_base")):
    cases.append("disk_full")
  return cases


def path_kinds():
  """Every (command, path flag, case) as a kind function."""
  return [_kind(command, flag, role, case)
          for command, (_, flags) in COMMANDS.items()
          for flag, role in flags.items()
          for case in _cases(command, flag, role)]


# -- the Predictor's own inputs (in process) ----------------------------------
def predictor_none(ctx):
  return _predictor_refuses(ctx, None, TypeError, "texts must be a list")


def predictor_not_utf8(ctx):
  return _predictor_refuses(ctx, [b"\xff\xfe"], ValueError, "not valid UTF-8")


def _predictor_refuses(ctx, texts, error, needle):
  from fastbert_tf import Predictor  # pylint: disable=g-import-not-at-top
  try:
    Predictor.load(ctx.model).predict(texts)
  except error as e:
    return ("clear", str(e)[:200]) if needle in str(e) else (
        "unclear", str(e)[:200])
  except Exception as e:  # pylint: disable=broad-except
    return "crash", repr(e)[:200]
  return "silent", "answered"


def predictor_export_base_newest_damaged(ctx):
  from fastbert_tf import Predictor  # pylint: disable=g-import-not-at-top
  scratch = ctx.scratch("export_damaged")
  exports = os.path.join(scratch, "exports")
  made = ctx.run("export.export_saved_model", f"--model_dir={ctx.model}",
                 f"--export_base={exports}")
  if made.returncode:
    return "crash", made.stderr.strip().splitlines()[-1][:200]
  shutil.copytree(os.path.join(exports, "1"), os.path.join(exports, "2"))
  with open(os.path.join(exports, "2", "saved_model.pb"), "wb") as f:
    f.write(b"\x08\x01garbage")
  try:
    predictor = Predictor.load(exports)
  except Exception as e:  # pylint: disable=broad-except
    return "crash", repr(e)[:200]
  if predictor.source != os.path.join(exports, "1"):
    return "silent", f"loaded {predictor.source}"
  return "correct", "fell back to version 1"


PREDICTOR_KINDS = [predictor_none, predictor_not_utf8,
                   predictor_export_base_newest_damaged]
