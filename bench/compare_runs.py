"""Side-by-side records of finished training runs (e.g. float32 against
mixed_bfloat16 on the same data), from their own results.json and flags.txt.

  python bench/compare_runs.py --model_dirs=runs/a,runs/b \
      --output=bench/results/bf16_accuracy.json

Each record holds the run's resolved flags (its flags.txt, itself a
flagfile: `python -m fastbert_tf.train --flagfile=<model_dir>/flags.txt`
repeats it, and flags_distill.txt when phase 2 was re-run), train seconds and accuracy / exit layer / speedup per speed;
a table is printed with every run's difference to the first one.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dirs", [], "Finished model directories.")
flags.DEFINE_string("output", "bench/results/compare_runs.json", "Records.")


def _read(model_dir):
  with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  run_flags = {}
  for name in ("flags.txt", "flags_distill.txt"):  # phase 1 (+ a re-run 2)
    path = os.path.join(model_dir, name)
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        run_flags[name] = [l.strip() for l in f if l.startswith("--")]
  return results, run_flags


def main(argv):
  del argv
  records, first = [], None
  for model_dir in FLAGS.model_dirs:
    results, run_flags = _read(model_dir)
    speeds = {r["speed"]: r for r in results["speeds"]}
    first = first or speeds
    print(f"{model_dir} (train {results.get('train_seconds', 0):.0f} s)")
    for speed, r in sorted(speeds.items()):
      base = first.get(speed)
      diff = (r["accuracy"] - base["accuracy"]) * 100 if base else float("nan")
      print(f"  speed {speed:<4g} {r['accuracy']:.2%} ({diff:+.2f} points) "
            f"exit {r['mean_exit_layer']:.2f} {r['speedup']:.2f}x")
    records.append(common.record(
        benchmark="compare_runs", model_dir=model_dir, flags=run_flags,
        train_seconds=results.get("train_seconds"),
        num_test_samples=results.get("num_test_samples"),
        speeds=[dict(speed=r["speed"], accuracy=r["accuracy"],
                     mean_exit_layer=r["mean_exit_layer"],
                     speedup=r["speedup"]) for r in results["speeds"]]))
  common.write_records(FLAGS.output, records)


if __name__ == "__main__":
  app.run(main)
