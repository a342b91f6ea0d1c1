"""Fault injection for serving: send many kinds of bad request to a running
local server and count what came back.

  python bench/serving_faults.py [--export_base=exports/quickstart]
  python bench/serving_faults.py --single_text=xla \
      --output=bench/results/serving_faults_xla.json

Without --export_base a tiny model is exported to a temporary directory.
The server runs as a subprocess (a crash is a dead process, not an
exception). Each kind is a function returning a verdict:

  clear   an error with the expected gRPC code and a message naming the
          problem, and the server still answers a good request correctly;
  correct a valid edge case answered with the reference answer;
  unclear an error, but with another code or message;
  crash   the server died, hung (deadline), or answered INTERNAL/UNKNOWN;
  silent  a bad request answered OK, or a wrong answer (silent wrong).

Targets: 0 crashes, 0 silent. SECTIONS maps a part ("serving") to its
kinds; a training part adds its own list of functions taking a context and
returning a verdict, and is run the same way.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common  # pylint: disable=g-import-not-at-top
from bench import serving_fault_kinds as kinds_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("export_base", None,
                    "Model base path to serve (default: a tiny model, "
                    "exported to a temporary directory).")
flags.DEFINE_string("output", "bench/results/serving_faults.json",
                    "Where the record goes.")
flags.DEFINE_list("sections", ["serving"], "Parts to run.")
flags.DEFINE_enum("single_text", "loop", ["loop", "xla"],
                  "The tiny model's export: xla adds the one-text XLA path "
                  "(--single_text=xla, buckets 4,8,16).")

VERDICTS = ("clear", "correct", "unclear", "crash", "silent")


def run_section(kinds, context):
  """Runs each kind(context) -> (verdict, detail); returns rows."""
  rows = []
  for kind in kinds:
    try:
      verdict, detail = kind(context)
    except Exception as e:  # pylint: disable=broad-except
      verdict, detail = "crash", f"the check itself raised {e!r}"
    if verdict != "crash" and not context.healthy():
      verdict, detail = "crash", "the server stopped answering afterwards: " + (
          detail or "")
    rows.append(dict(kind=kind.__name__, verdict=verdict, detail=detail))
    print(f"{verdict:8s} {kind.__name__:40s} {detail[:110]}", flush=True)
  return rows


def main(argv):
  del argv
  sections = {"serving": kinds_lib.serving_kinds}
  with tempfile.TemporaryDirectory() as tmp:
    base = FLAGS.export_base or kinds_lib.export_tiny(
        tmp, (4, 8, 16) if FLAGS.single_text == "xla" else None)
    records = []
    for name in FLAGS.sections:
      with kinds_lib.ServingContext(base, os.path.join(tmp, "access.log")
                                    ) as context:
        rows = run_section(sections[name](), context)
        counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
        print(f"{name}: {len(rows)} kinds tried, {counts['clear']} clear "
              f"errors, {counts['correct']} correct answers, "
              f"{counts['unclear']} unclear, {counts['crash']} crashes, "
              f"{counts['silent']} silent wrong answers")
        records.append(common.record(section=name, kinds_tried=len(rows),
                                     **counts, export_base=FLAGS.export_base
                                     or "tiny model (test_tiny preset)",
                                     single_text=FLAGS.single_text,
                                     rows=rows))
  previous = [r for r in common.read_records(FLAGS.output)
              if r.get("section") not in FLAGS.sections]
  common.write_records(FLAGS.output, previous + records)
  bad = sum(r["crash"] + r["silent"] for r in records)
  return 1 if bad else 0


if __name__ == "__main__":
  app.run(main)
