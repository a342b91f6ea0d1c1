"""Threshold-sweep reports: run the sweep, write CSV, JSON and figures.

`run_sweep(SweepConfig)` is the library behind `python -m fastbert_tf.sweep`:
it loads a saved model, runs every classifier once per sample of a split
(inference.sweep), derives every speed, optionally picks the speed that meets
a target on the dev split, and writes sweep.csv, sweep.json and the PNGs of
reporting.plots. TensorFlow is imported inside the functions that need it,
so `reporting.paper_results` and `reporting.plots` stay light.
"""

import csv
import dataclasses
import json
import math
import os
import time

from absl import logging

from fastbert_tf import paths
from fastbert_tf.errors import ConfigError

CSV_FILE = "sweep.csv"
JSON_FILE = "sweep.json"
CSV_COLUMNS = ("speed", "accuracy", "mean_exit_layer", "mean_flops",
               "speedup", "num_samples")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  """What to sweep and where to write it (see flags.define_sweep_flags).

  Attributes:
    model_dir: a saved fastbert_tf model directory.
    output_dir: where sweep.csv, sweep.json and the PNGs go.
    speeds: tuple of float in [0, 1].
    data: TSV directory, `tfds:NAME` or `quickstart`.
    split, dev_split: str, the reported split and the target-selection one.
    batch_size: int.
    max_samples: int, first N samples of each split; 0 = all.
    target_accuracy_drop: float points or None.
    target_speedup: float or None.
    paper_dataset: str, a paper_results name to overlay, or "".
    histogram_speeds: tuple of float, speeds of the exit histogram.
    uncertainty_layers: tuple of 1-based layers; () = first, middle, last.
    exit_criterion, top_k: the criteria.ExitCriterion.
    skip_bad_rows: bool, as in sources.read_tsv.
  """
  model_dir: str
  output_dir: str
  speeds: tuple
  data: str = "quickstart"
  split: str = "test"
  dev_split: str = "dev"
  batch_size: int = 64
  max_samples: int = 0
  target_accuracy_drop: float | None = None
  target_speedup: float | None = None
  paper_dataset: str = ""
  histogram_speeds: tuple = (0.1, 0.5, 0.8)
  uncertainty_layers: tuple = ()
  exit_criterion: str = "entropy"
  top_k: int = 2
  skip_bad_rows: bool = False

  def __post_init__(self):
    check_numbers(self)

  @property
  def has_target(self):
    return (self.target_accuracy_drop is not None or
            self.target_speedup is not None)


def _refuse(name, value, what, expected):
  return ConfigError(f"--{name}={value}: {what}; expected {expected}")


def check_numbers(cfg):
  """A SweepConfig's numbers in their ranges, before any work (those that
  need the model, --top_k and --uncertainty_layers against its classes and
  layers, are checked once it is loaded).

  Raises:
    ConfigError: `--flag=value: what is wrong; expected what`.
  """
  for name, least in (("batch_size", 1), ("max_samples", 0), ("top_k", 1)):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or (
        value < least):
      raise _refuse(name, value, "out of range",
                    f"an integer >= {least}")
  if cfg.exit_criterion == "topk_entropy" and cfg.top_k < 2:
    raise _refuse("top_k", cfg.top_k, "--exit_criterion=topk_entropy "
                  "renormalizes over the k likeliest classes",
                  "an integer >= 2 (and at most the number of classes)")
  drop, speedup = cfg.target_accuracy_drop, cfg.target_speedup
  if drop is not None and not (math.isfinite(drop) and 0 <= drop <= 100):
    raise _refuse("target_accuracy_drop", drop, "not a drop in accuracy "
                  "points", "a number in [0, 100]")
  if speedup is not None and not (math.isfinite(speedup) and speedup > 0):
    raise _refuse("target_speedup", speedup, "not a speedup",
                  "a finite number > 0")
  bad = [k for k in cfg.uncertainty_layers if k < 1]
  if bad:
    raise _refuse("uncertainty_layers",
                  ",".join(str(k) for k in cfg.uncertainty_layers),
                  f"layer {bad[0]} is not a layer", "1-based layers")
  for name in ("speeds", "histogram_speeds"):
    bad = [s for s in getattr(cfg, name) if not 0.0 <= s <= 1.0]
    if bad:
      raise _refuse(name, ",".join(f"{s:g}" for s in getattr(cfg, name)),
                    f"speed {bad[0]:g} is outside [0, 1]", "speeds in [0, 1]")


def _one_pass(cfg, model, encoder, criterion, split):
  """Loads a split and runs every classifier over it once."""
  from fastbert_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data import sources  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import sweep  # pylint: disable=g-import-not-at-top
  data = sources.load_split(cfg.data, split, model.num_classes,
                            cfg.skip_bad_rows)
  from fastbert_tf.data import rows  # pylint: disable=g-import-not-at-top
  data = rows.refuse_empty_texts(data, encoder, cfg.skip_bad_rows)
  if cfg.max_samples and cfg.max_samples < len(data):
    logging.info("Using the first %d of %d %s examples (--max_samples).",
                 cfg.max_samples, len(data), split)
    data = data.head(cfg.max_samples)
  dataset = pipeline.make_dataset(data, encoder, batch_size=cfg.batch_size)
  return sweep.collect(model, dataset, criterion), data.source


def _target(cfg, model, encoder, criterion, table, test_records):
  """The target choice on the dev split, with the test numbers at it."""
  from fastbert_tf.inference import sweep  # pylint: disable=g-import-not-at-top
  dev, source = _one_pass(cfg, model, encoder, criterion, cfg.dev_split)
  dev_records = sweep.derive(dev, cfg.speeds, table)
  # Speed 0 means the teacher answers every sample: its accuracy.
  reference = sweep.classifier_accuracy(dev)[-1]
  chosen, message = sweep.choose_speed(
      dev_records, reference, cfg.target_accuracy_drop, cfg.target_speedup)
  test = None
  if chosen:
    test = next(r for r in test_records if r["speed"] == chosen["speed"])
  return dict(
      target_accuracy_drop=cfg.target_accuracy_drop,
      target_speedup=cfg.target_speedup, dev_split=cfg.dev_split,
      dev_source=source, dev_num_samples=len(dev),
      dev_speed0_accuracy=reference,
      chosen_speed=chosen and chosen["speed"], dev=chosen, test=test,
      met=chosen is not None, message=message, dev_speeds=dev_records)


def run_sweep(cfg):
  """Runs the sweep and writes every output file.

  Args:
    cfg: SweepConfig.

  Returns:
    the dict written to sweep.json.

  Raises:
    sources.DataError, FileNotFoundError: bad data or model directory.
    errors.PathError: --model_dir or --output_dir cannot work (before any
      work).
    sweep.SweepError: an uncertainty layer outside the model.
  """
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import flops as flops_lib  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import sweep  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  from fastbert_tf.reporting import paper_results  # pylint: disable=g-import-not-at-top
  from fastbert_tf.reporting import plots  # pylint: disable=g-import-not-at-top
  # --output_dir=<the model> would rewrite its MODEL_CARD.md, and predict
  # and export would then refuse the model; a subdirectory is its own.
  paths.check_paths(
      [paths.Arg("--model_dir", cfg.model_dir, paths.READ_DIR),
       paths.Arg("--output_dir", cfg.output_dir, paths.WRITE_DIR)],
      own_model_dirs=[cfg.model_dir])
  paper = paper_results.lookup(cfg.paper_dataset) if cfg.paper_dataset else None
  criterion = criteria.ExitCriterion(cfg.exit_criterion, top_k=cfg.top_k)
  model, encoder = saving.load_model(cfg.model_dir)
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  layers = (cfg.uncertainty_layers or
            sweep.default_uncertainty_layers(model.num_layers))
  bad = [k for k in layers if not 1 <= k <= model.num_layers]
  if bad:  # Checked before the forward pass, which may take minutes.
    raise sweep.SweepError(
        f"--uncertainty_layers={','.join(str(k) for k in layers)}: layer "
        f"{bad[0]} is not one of {cfg.model_dir}'s; expected layers 1.."
        f"{model.num_layers}")
  if cfg.exit_criterion == "topk_entropy" and cfg.top_k > model.num_classes:
    raise _refuse("top_k", cfg.top_k, f"more than the {model.num_classes} "
                  f"classes of {cfg.model_dir}",
                  f"2 to {model.num_classes}")
  start = time.perf_counter()
  one_pass, source = _one_pass(cfg, model, encoder, criterion, cfg.split)
  pass_seconds = time.perf_counter() - start
  start = time.perf_counter()
  records = sweep.derive(one_pass, cfg.speeds, table)
  derive_seconds = time.perf_counter() - start
  results = dict(
      model_dir=cfg.model_dir, data=cfg.data, split=cfg.split, source=source,
      num_samples=len(one_pass), criterion=dataclasses.asdict(criterion),
      max_seq_length=encoder.max_seq_length, num_layers=model.num_layers,
      baseline_flops=table.baseline, flops_by_exit_layer=table.cumulative(),
      max_speedup=table.max_speedup, speeds=records,
      classifier_accuracy=sweep.classifier_accuracy(one_pass),
      histogram_speeds=sweep.derive(one_pass, cfg.histogram_speeds, table),
      accuracy_by_uncertainty=[sweep.accuracy_by_uncertainty(one_pass, k)
                               for k in layers],
      seconds=dict(forward_pass=pass_seconds, derive=derive_seconds),
      paper=paper and paper.to_json())
  if cfg.has_target:
    results["target"] = _target(cfg, model, encoder, criterion, table, records)
  os.makedirs(cfg.output_dir, exist_ok=True)
  write_csv(records, os.path.join(cfg.output_dir, CSV_FILE))
  with open(os.path.join(cfg.output_dir, JSON_FILE), "w") as f:
    f.write(json.dumps(results, indent=2) + "\n")
  plots.save_all(results, cfg.output_dir, paper)
  if cfg.has_target:
    _write_card(cfg, results, model.num_classes)
  return results


def _write_card(cfg, results, num_classes):
  """MODEL_CARD.md with the chosen speed, into the sweep's output directory
  (the model directory is published and stays as it is). Its table is this
  sweep's: the speeds it swept, on the split it read."""
  from fastbert_tf.data.labels import LabelSet  # pylint: disable=g-import-not-at-top
  from fastbert_tf.reporting import model_card  # pylint: disable=g-import-not-at-top
  measured = dict(results, test_source=results["source"],
                  num_test_samples=results["num_samples"],
                  num_classes=num_classes, exit_criterion=results["criterion"])
  labels = LabelSet.load(cfg.model_dir, num_classes)
  card = model_card.render(
      measured, dict(name=os.path.basename(os.path.normpath(cfg.model_dir)),
                     model_dir=cfg.model_dir, data=cfg.data),
      labels.names if labels else None, results["target"])
  with open(os.path.join(cfg.output_dir, model_card.CARD_FILE), "w",
            encoding="utf-8") as f:
    f.write(card)


def write_csv(records, path):
  """One row per speed: CSV_COLUMNS then exit_layer_1..L (sample counts)."""
  num_layers = len(records[0]["exit_histogram"])
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(CSV_COLUMNS + tuple(f"exit_layer_{k}"
                                        for k in range(1, num_layers + 1)))
    for r in records:
      writer.writerow([r[c] for c in CSV_COLUMNS] + r["exit_histogram"])


def summary_text(results):
  """The speed table, per-classifier accuracy and the target choice."""
  from fastbert_tf.inference import evaluate  # pylint: disable=g-import-not-at-top
  lines = [f"{results['source']}: {results['num_samples']} samples, "
           f"criterion {results['criterion']['name']}",
           evaluate.format_table(results["speeds"], results["baseline_flops"]),
           "classifier accuracy (layer 1..L): " + ", ".join(
               f"{100 * a:.2f}%" for a in results["classifier_accuracy"])]
  target = results.get("target")
  if target:
    lines.append(f"target on {target['dev_split']}: {target['message']}")
    if target["met"]:
      t = target["test"]
      lines.append(f"serve speed {target['chosen_speed']:g}: on "
                   f"{results['split']} {100 * t['accuracy']:.2f}% at "
                   f"{t['speedup']:.2f}x (mean exit layer "
                   f"{t['mean_exit_layer']:.2f})")
  return "\n".join(lines)
