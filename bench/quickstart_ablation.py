r"""The quickstart recipe's ablation: the paper's phase 2 against per-exit
calibration and a sharper teacher, all on ONE phase-1 teacher, compared on
the dev split (where the recipe is chosen) and on test.

  python -m bench.quickstart_ablation --runs_dir=runs/qs \
      --output=bench/results/quickstart_ablation.json [--reuse]

Trains `configs/quickstart.flags` with --distill_temperature=1 (the paper's
phase 2) into <runs_dir>/base, then on copies of it: `cal` (--phase=calibrate),
`t05` (phase 2 again from fresh students, --distill_temperature=0.5) and
`t05cal` (t05, then calibrated); sweeps each over dev at speeds 0..1 by
0.05 and records the dev curves and each run's test results.json. --reuse
skips the runs and sweeps whose outputs exist.
"""

import json
import os
import shutil
import subprocess
import sys

from absl import app
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("runs_dir", "runs/qs", "Where the variants are trained.")
flags.DEFINE_string("output", "bench/results/quickstart_ablation.json",
                    "Records file.")
flags.DEFINE_boolean("reuse", False, "Keep finished runs and sweeps.")

CONFIG = "--flagfile=configs/quickstart.flags"
# name -> (made from, extra training flags); None: trained from scratch.
VARIANTS = {
    "base": (None, ["--distill_temperature=1", "--overwrite"]),
    "cal": ("base", ["--phase=calibrate", "--calibrate_exits",
                     "--distill_temperature=1"]),
    "t05": ("base", ["--phase=distill", "--reinit_students",
                     "--distill_temperature=0.5"]),
    "t05cal": ("t05", ["--phase=calibrate", "--calibrate_exits",
                       "--distill_temperature=1"]),
}


def _python_m(module, *args):
  subprocess.run([sys.executable, "-m", module, *args], check=True)


def main(argv):
  del argv
  record = {}
  for name, (source, extra) in VARIANTS.items():
    model_dir = os.path.join(FLAGS.runs_dir, name)
    if not (FLAGS.reuse and os.path.exists(os.path.join(model_dir,
                                                        "results.json"))):
      if source:
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(os.path.join(FLAGS.runs_dir, source), model_dir,
                        ignore=shutil.ignore_patterns("logs", ".run"))
      _python_m("fastbert_tf.train", CONFIG, f"--model_dir={model_dir}",
                *extra)
    sweep_dir = os.path.join(FLAGS.runs_dir, f"sweep_dev_{name}")
    if not (FLAGS.reuse and os.path.exists(os.path.join(sweep_dir,
                                                        "sweep.json"))):
      _python_m("fastbert_tf.sweep", f"--model_dir={model_dir}",
                "--data=quickstart", "--split=dev", "--speeds=0:1:0.05",
                f"--output_dir={sweep_dir}")
    with open(os.path.join(sweep_dir, "sweep.json"), encoding="utf-8") as f:
      sweep = json.load(f)
    with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
      results = json.load(f)
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
      config = json.load(f)
    record[name] = dict(
        made_from=source, flags=extra,
        exit_temperatures=config.get("config", config).get(
            "exit_temperatures"),
        dev_curve=[{k: p[k] for k in ("speed", "accuracy", "speedup",
                                      "mean_exit_layer")}
                   for p in sweep["speeds"]],
        dev_classifier_accuracy=sweep["classifier_accuracy"],
        test=[{k: p[k] for k in ("speed", "accuracy", "speedup",
                                 "mean_exit_layer")}
              for p in results["speeds"]])
  common.write_records(FLAGS.output, common.read_records(FLAGS.output) +
                       [common.record(variants=record)])
  for name, r in record.items():
    dev = {round(p["speed"], 2): p for p in r["dev_curve"]}
    print(name, " ".join(f"{s}: {100 * dev[s]['accuracy']:.2f}% "
                         f"{dev[s]['speedup']:.2f}x" for s in (0.0, 0.1, 0.5,
                                                               0.8)))


if __name__ == "__main__":
  app.run(main)
