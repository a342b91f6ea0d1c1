"""The NUMERIC class of bench/training_faults.py, enumerated, not imagined:
for every numeric flag of every command, the values zero, negative, huge
(10**12, which must neither allocate nor hang), NaN and inf (floats), a word
where a number is expected (`true`), and each flag's own edges (a speed of
1.5, a dropout of 1, --max_seq_length beyond the position table...).

Each flag carries its valid set (`valid(value) -> bool`, written so that
NaN is outside it): a value outside must be refused with one line naming
the flag (`clear`); a value inside must run and end as documented
(`correct`; the tiny task keeps every accepted training cheap). A value
equal to a training flag's default the reference training already ran is
`correct` without another training.

  python bench/training_faults.py --classes=numeric \
      --output=bench/results/numeric_faults.json

export/export_tflite.py has no numeric flag (its --quantize and --variant
are enums); fastbert-beam's two (--speed, --batch_size) share predict's
checks and run in the Beam virtualenv, under tests/test_beam_*.py.
"""

import math
import os
import re
import select
import signal
import subprocess
import sys

from bench import training_fault_kinds as base

HUGE = "1000000000000"  # 10**12
GENERIC_INT = ("0", "-1", HUGE, "true")
GENERIC_FLOAT = ("0", "-1", "1e12", "nan", "inf", "true")


def _num(text):
  try:
    return float(text)
  except ValueError:
    return None


def between(lo, hi=math.inf, lo_open=False, hi_open=False):
  """valid(text): a number in [lo, hi] (open ends as asked); never NaN."""
  def valid(text):
    v = _num(text)
    if v is None or math.isnan(v):
      return False
    return ((v > lo if lo_open else v >= lo) and
            (v < hi if hi_open else v <= hi))
  return valid


def _int_at_least(least):
  return lambda text: re.fullmatch(r"-?\d+", text) is not None and int(
      text) >= least


def one_of(*values):
  return lambda text: _num(text) in {float(v) for v in values}


def _bad_rows_cap(text):
  """--max_bad_rows: a row count, or a share in [0, 1] (0.01 or 1%)."""
  if text.isdigit():
    return True
  share = _num(text[:-1]) / 100 if text.endswith("%") and _num(
      text[:-1]) is not None else (_num(text) if "." in text else None)
  return share is not None and 0 <= share <= 1


def spec(valid, kind="int", extra=(), args=(), default=None):
  """One numeric flag: its valid set, generic values by `kind` ('int',
  'float', 'list'), extra values, flags it needs beside it, and its default
  (a training flag at its default is covered by the reference run)."""
  return dict(valid=valid, kind=kind, extra=extra, args=args,
              default=default)


TOPK = ("--exit_criterion=topk_entropy",)
# command -> (module, {flag: spec}). The tiny task has 48 training rows,
# 2 classes, test_tiny's 3 layers and a position table of 32.
COMMANDS = {
    "train": ("fastbert_tf.train", {
        "--num_classes": spec(one_of(0, 2, 3), extra=("1", "3"), default=0),
        "--max_bad_rows": spec(_bad_rows_cap, extra=("nan", "inf", "1e12",
                                                     "150%", "1.5"),
                               args=("--skip_bad_rows",)),
        "--class_weights": spec(lambda t: t in ("1,1e12", "0.5,2"), "list",
                                extra=("0,0", "-1,1", "1,1e12", "nan,1",
                                       "inf,1", "true,1", "1")),
        "--vocab_size": spec(between(6), extra=("5", "6")),
        "--max_seq_length": spec(between(3, 32), extra=("1", "2", "33")),
        "--max_train_samples": spec(between(0), default=0),
        "--max_eval_samples": spec(between(0), default=0),
        "--batch_size": spec(between(1, 48), extra=("49",)),
        "--eval_batch_size": spec(between(1)),
        "--length_group": spec(between(0), default=0),
        "--finetune_epochs": spec(between(1, 10_000)),
        "--distill_epochs": spec(between(1, 10_000)),
        "--finetune_learning_rate": spec(between(0, 1, lo_open=True),
                                         "float"),
        "--distill_learning_rate": spec(between(0, 1, lo_open=True),
                                        "float"),
        "--warmup_fraction": spec(between(0, 1), "float"),
        "--weight_decay": spec(between(0, 1), "float"),
        "--distill_temperature": spec(between(0, 100, lo_open=True),
                                      "float", default=1.0),
        "--speeds": spec(between(0, 1), "list", extra=("1.5", "0,nan")),
        "--seed": spec(between(0, 2**32 - 1), extra=(str(2**32),),
                       default=0),
        "--num_gpus": spec(one_of(0), default=0),
        "--checkpoint_every_steps": spec(between(0), default=0),
        "--pad_to_multiple_of": spec(between(0), default=0),
        "--top_k": spec(between(2, 2), extra=("1", "3"), args=TOPK),
    }),
    "sweep": ("fastbert_tf.sweep", {
        "--speeds": spec(between(0, 1), "list",
                         extra=("0:1:0", "0:1:-0.1", "0:1:1e-12", "0:2:0.5",
                                "0:nan:0.1")),
        "--histogram_speeds": spec(between(0, 1), "list"),
        "--batch_size": spec(between(1)),
        "--max_samples": spec(between(0)),
        "--target_accuracy_drop": spec(between(0, 100), "float"),
        "--target_speedup": spec(between(0, lo_open=True, hi=1e300), "float"),
        "--uncertainty_layers": spec(between(1, 3), "list", extra=("4",)),
        "--top_k": spec(between(2, 2), extra=("1", "3"), args=TOPK),
    }),
    "predict": ("fastbert_tf.predict", {
        "--speed": spec(between(0, 1), "float", extra=("1.5",)),
        "--batch_size": spec(between(1)),
    }),
    "export": ("export.export_saved_model", {
        "--version": spec(between(0, 2**63 - 1), extra=(str(2**63),)),
        "--warmup_speed": spec(between(0, 1), "float", extra=("1.5",)),
        "--xla_buckets": spec(_int_at_least(1), "list", extra=(HUGE,),
                              args=("--single_text=xla",)),
        "--top_k": spec(between(2, 2), extra=("1", "3"), args=TOPK),
    }),
    "flops": ("fastbert_tf.flops", {
        "--max_seq_length": spec(between(3, 512), extra=("1", "513")),
        "--num_classes": spec(between(2), extra=("1",)),
    }),
    "serve": ("fastbert_tf.serving.server", {
        "--port": spec(between(0, 65535), extra=("65536",)),
        "--max_workers": spec(between(1)),
        "--max_message_mb": spec(between(1, 2047), extra=("2048",)),
        "--max_texts_per_request": spec(between(1)),
        "--max_text_chars": spec(between(1)),
        "--max_request_chars": spec(between(1)),
        "--file_system_poll_wait_seconds": spec(
            between(0, 86_400 * 365), "float"),
        "--max_versions": spec(between(1)),
        "--max_batch_size": spec(between(1), args=("--enable_batching",)),
        "--batch_timeout_micros": spec(between(0, 60_000_000),
                                       args=("--enable_batching",)),
        "--num_batch_threads": spec(between(1, 16),
                                    args=("--enable_batching",)),
        "--max_enqueued_batches": spec(between(1),
                                       args=("--enable_batching",)),
    }),
}
# A huge value that is valid may still not be run where running it means
# doing that much work: 10**12 epochs, or a 10**12-wide sweep grid, are
# refused by their specs above; these are valid and cheap, and run.


def _values(flag_spec):
  generic = {"int": GENERIC_INT, "float": GENERIC_FLOAT,
             "list": ("0", "-1", "1e12", "nan", "inf", "true")}
  out = list(generic[flag_spec["kind"]])
  out += [v for v in flag_spec["extra"] if v not in out]
  return out


_CASE_NAMES = {"0": "zero", "-1": "negative", HUGE: "huge", "1e12": "e12",
               "nan": "nan", "inf": "inf", "true": "word"}


def _case_name(value):
  if value in _CASE_NAMES:
    return _CASE_NAMES[value]
  return "v" + re.sub(r"[^0-9a-zA-Z]+", "_", value).strip("_")


# -- running one command ------------------------------------------------------


def _export(ctx):
  """A tiny export of ctx's pristine model, made once."""
  path = getattr(ctx, "numeric_export", None)
  if path:
    return path
  path = os.path.join(ctx.scratch("numeric_export"), "exports")
  made = ctx.run("export.export_saved_model", f"--model_dir={ctx.pristine}",
                 f"--export_base={path}")
  if made.returncode:
    raise RuntimeError("the tiny export failed: " + made.stderr[-2000:])
  ctx.numeric_export = path
  return path


# An accepted training runs phase 1 only (and evaluates one speed) unless
# the flag is phase 2's: the value is still trained with, at half the cost.
_PHASE_2 = ("--distill_epochs", "--distill_learning_rate",
            "--distill_temperature", "--speeds")


def _command_line(ctx, command, scratch, flag, value, extra, valid=False):
  flags = list(extra) + [f"{flag}={value}"]
  if command == "train":
    cheap = ("--phase=finetune", "--speeds=0") if (
        valid and flag not in _PHASE_2) else ()
    return [f"--data={ctx.data}", f"--model_dir={scratch}/m", *base.TINY,
            *cheap, *flags]
  if command == "sweep":
    return [f"--model_dir={ctx.model}", f"--data={ctx.data}",
            f"--output_dir={scratch}/sweep", "--speeds=0,0.5", *flags]
  if command == "predict":
    return [f"--model_dir={ctx.model}", f"--input={ctx.texts}",
            f"--output={scratch}/answers.jsonl", *flags]
  if command == "export":
    return [f"--model_dir={ctx.model}", f"--export_base={scratch}/exports",
            *flags]
  if command == "flops":
    return ["--preset=bert_base", *flags]
  if command == "serve":
    base_path = _export(ctx)
    if flag != "--port":
      flags.append("--port=0")
    return [f"--model_base_path={base_path}", "--model_name=m", *flags]
  raise ValueError(command)


def _serve(ctx, args, timeout=600):
  """Starts the server; (verdict-ready CompletedProcess-like, served)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen(
      [sys.executable, "-m", "fastbert_tf.serving.server", *args],
      cwd=base.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=env)
  ready, _, _ = select.select([proc.stdout], [], [], timeout)
  line = proc.stdout.readline() if ready else ""
  served = line.startswith("serving ")
  if proc.poll() is None:
    proc.send_signal(signal.SIGTERM if served else signal.SIGKILL)
  try:
    _, stderr = proc.communicate(timeout=120)
  except subprocess.TimeoutExpired:
    proc.kill()
    _, stderr = proc.communicate()
    return subprocess.CompletedProcess(args, -9, line, stderr), served
  return subprocess.CompletedProcess(args, proc.returncode, line,
                                     stderr), served


def _kind(command, flag, flag_spec, value):
  def kind(ctx):
    module = COMMANDS[command][0]
    scratch = ctx.scratch(f"num_{command}_{flag.strip('-')}")
    before = base.snapshot(ctx.model)
    valid = flag_spec["valid"](value)
    if (command == "train" and valid and flag_spec["default"] is not None
        and _num(value) == flag_spec["default"]):
      return "correct", f"{flag}={value} is the default the reference " \
                        "training ran with"
    args = _command_line(ctx, command, scratch, flag, value,
                         flag_spec["args"], valid)
    if command == "serve":
      result, served = _serve(ctx, args)
      if not valid:
        if served:
          return "silent", "accepted: the server started"
        return base.refused(result, flag, untouched=ctx.model, before=before)
      if served:
        return "correct", result.stdout.strip()
      lines = result.stderr.strip().splitlines() or [""]
      return ("crash" if "Traceback" in result.stderr else "unclear",
              f"did not start (exit {result.returncode}): {lines[-1][:160]}")
    result = ctx.run(module, *args)
    if not valid:
      return base.refused(result, flag, untouched=ctx.model, before=before)
    if base.snapshot(ctx.model) != before:
      return "lost", f"{ctx.model} changed"
    if (command == "sweep" and flag == "--target_speedup" and
        result.returncode == 3 and "target not met" in result.stderr):
      return "correct", "exit 3, target not met (documented)"
    return base.succeeded(result)
  kind.__name__ = (f"numeric_{command}_{flag.strip('-')}_"
                   f"{_case_name(value)}")
  return kind


def numeric_kinds():
  """Every (command, numeric flag, value) as a kind function."""
  return [_kind(command, flag, flag_spec, value)
          for command, (_, flags) in COMMANDS.items()
          for flag, flag_spec in flags.items()
          for value in _values(flag_spec)]
