"""Fault injection for training and model files: many kinds of bad input,
broken files and kills, each run through the real command line.

  python bench/training_faults.py [--output=bench/results/training_faults.json]
  python bench/training_faults.py --classes=path,predictor \
      --output=bench/results/path_faults.json

The path class (bench/path_fault_kinds.py) is enumerated: every path flag
of train, predict, sweep and export, times every way a path can be wrong;
so is the numeric class (bench/numeric_fault_kinds.py): every numeric flag
of train, sweep, predict, export, flops and the server, times zero,
negative, huge, NaN, inf, a word and the flag's own edges.

  python bench/training_faults.py --classes=numeric \
      --output=bench/results/numeric_faults.json

Each kind returns a verdict (as bench/serving_faults.py's):
  clear    exit status 1, one `error:` line naming the file or flag and what
           is wrong, no traceback, and the model directory untouched;
  correct  a valid edge case (or a killed run rerun) that ends as it should;
  unclear  refused, but the message does not name the problem;
  crash    a traceback or another exit status;
  silent   bad input accepted (exit 0) or a wrong result;
  lost     a finished model was changed or damaged (data lost).
Targets: 0 crashes, 0 silent, 0 lost.
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common  # pylint: disable=g-import-not-at-top
from bench import numeric_fault_kinds
from bench import path_fault_kinds
from bench import training_fault_kinds as kinds_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "bench/results/training_faults.json",
                    "Where the record goes.")
flags.DEFINE_list("only", [], "Run only these kinds (names).")
flags.DEFINE_list("classes", [], "Run only these classes (the kinds' name "
                  "prefixes: data, labels, flags, dir, kill, path, "
                  "predictor, numeric); empty = all.")

VERDICTS = ("clear", "correct", "unclear", "crash", "silent", "lost")


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    context = kinds_lib.TrainingContext(tmp)
    for kind in (kinds_lib.KINDS + path_fault_kinds.path_kinds() +
                 path_fault_kinds.PREDICTOR_KINDS +
                 numeric_fault_kinds.numeric_kinds()):
      if FLAGS.only and kind.__name__ not in FLAGS.only:
        continue
      if FLAGS.classes and kind.__name__.split("_")[0] not in FLAGS.classes:
        continue
      try:
        verdict, detail = kind(context)
      except Exception as e:  # pylint: disable=broad-except
        verdict, detail = "crash", f"the check itself raised {e!r}"
      rows.append(dict(kind=kind.__name__, verdict=verdict, detail=detail))
      print(f"{verdict:8s} {kind.__name__:44s} {detail[:100]}", flush=True)
      context.reset_model()
      _write(rows, complete=False)  # a stopped bench keeps what it saw
  counts = _write(rows, complete=True)
  print(f"training: {len(rows)} kinds tried, {counts['clear']} clear errors, "
        f"{counts['correct']} correct, {counts['unclear']} unclear, "
        f"{counts['crash']} crashes, {counts['silent']} silent wrong, "
        f"{counts['lost']} data lost")
  return 1 if counts["crash"] + counts["silent"] + counts["lost"] else 0


def _write(rows, complete):
  """Writes the record of `rows` (complete: every selected kind ran);
  returns the verdict counts."""
  counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
  classes = {}
  for row in rows:
    name = row["kind"].split("_")[0]
    classes.setdefault(name, {v: 0 for v in VERDICTS})[row["verdict"]] += 1
  commands = {}  # the numeric class per command (numeric_<command>_...)
  for row in rows:
    if row["kind"].startswith("numeric_"):
      name = row["kind"].split("_")[1]
      commands.setdefault(name, {v: 0 for v in VERDICTS})[row["verdict"]] += 1
  record = common.record(section="training", kinds_tried=len(rows), **counts,
                         complete=complete, classes=classes,
                         **({"numeric_by_command": commands} if commands
                            else {}), rows=rows)
  common.write_records(FLAGS.output, [record])
  return counts


if __name__ == "__main__":
  app.run(main)
