r"""The README's first command, recorded: runs `make quickstart` (or the
target given), times it, and writes what it printed, its results.json per
speed and the wall time into a record. The README's quickstart table and
BENCHMARKS.md's come from this record.

  python -m bench.quickstart --output=bench/results/quickstart.json
"""

import json
import os
import subprocess
import time

from absl import app
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("target", "quickstart", "The make target.")
flags.DEFINE_string("model_dir", "runs/quickstart", "Where it writes.")
flags.DEFINE_string("output", "bench/results/quickstart.json", "Records.")


def main(argv):
  del argv
  start = time.time()
  run = subprocess.run(["make", FLAGS.target], capture_output=True,
                       text=True, check=False)
  wall = time.time() - start
  if run.returncode:
    raise SystemExit(f"make {FLAGS.target} failed ({run.returncode}):\n"
                     f"{run.stderr[-3000:]}")
  with open(os.path.join(FLAGS.model_dir, "results.json"),
            encoding="utf-8") as f:
    results = json.load(f)
  table = [l for l in run.stdout.splitlines()
           if l.strip() and not l.startswith(("Wrote", "Exported"))]
  record = common.record(
      make_target=FLAGS.target, wall_seconds=round(wall),
      load_average=os.getloadavg(), printed=table,
      speeds=[{k: r[k] for k in ("speed", "accuracy", "mean_exit_layer",
                                 "mean_flops", "speedup")}
              for r in results["speeds"]],
      baseline_flops=results["baseline_flops"])
  common.write_records(FLAGS.output,
                       common.read_records(FLAGS.output) + [record])
  print("\n".join(table))
  print(f"wall {wall:.0f} s")


if __name__ == "__main__":
  app.run(main)
