"""The threshold sweep: one pass equals the early-exit loop at every speed;
speed parsing, target selection, the paper table and the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf.reporting import report as reporting
from fastbert_tf import testing
from fastbert_tf.data import pipeline
from fastbert_tf.data import sources
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import evaluate
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.inference import sweep
from fastbert_tf.models import saving
from fastbert_tf.reporting import paper_results
from fastbert_tf.reporting import plots

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEEDS = (0.0, 0.05, 0.3, 0.5, 0.7, 0.95, 1.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model():
  return testing.tiny_model(seed=3, sharpen=8.0, dropout=0.0, num_layers=4)


@pytest.fixture(scope="module")
def encoder():
  return TextEncoder(testing.TINY_VOCAB, 16)


@pytest.fixture(scope="module")
def dataset(encoder):
  rows = testing.letter_task(60, seed=5)
  data = sources.TextDataset([t for _, t in rows], None,
                             [label for label, _ in rows], "letter_task")
  # Batch 16 leaves a last batch of 12: partial batches are covered too.
  return pipeline.make_dataset(data, encoder, batch_size=16)


def _loop(model, dataset, table, criterion, speed):
  """The early-exit loop over the dataset, as evaluate.collect_outputs runs
  it, with one traced function per criterion to keep the test fast."""
  run = _loop.cache.setdefault(
      criterion, early_exit.compiled_early_exit(model, table, criterion))
  outputs = {"exit_layer": [], "label": [], "flops": [], "labels": []}
  for features, labels in dataset:
    out = run(features["token_ids"], features["segment_ids"],
              features["padding_mask"], tf.constant(speed, tf.float32))
    for key in ("exit_layer", "label", "flops"):
      outputs[key].append(out[key].numpy())
    outputs["labels"].append(labels.numpy())
  return {k: np.concatenate(v) for k, v in outputs.items()}


_loop.cache = {}


@pytest.mark.parametrize("name", criteria.NAMES)
def test_derived_numbers_equal_the_early_exit_loop(model, dataset, name):
  criterion = criteria.ExitCriterion(name, top_k=2)
  table = flops_lib.flops_table(model.get_config(), 16)
  one_pass = sweep.collect(model, dataset, criterion)
  records = sweep.derive(one_pass, SPEEDS, table)
  layers_used = set()
  for speed, record in zip(SPEEDS, records):
    loop = _loop(model, dataset, table, criterion, speed)
    exits = sweep.exit_layers(one_pass, speed)
    np.testing.assert_array_equal(exits, loop["exit_layer"], err_msg=speed)
    np.testing.assert_array_equal(
        one_pass.predictions[np.arange(len(exits)), exits - 1], loop["label"])
    want = evaluate.summarize(loop, speed, table)
    for key in ("speed", "accuracy", "mean_exit_layer", "num_samples"):
      assert record[key] == want[key], (speed, key)
    # The loop sums float32 FLOPs; the sweep counts exactly in float64.
    assert record["mean_flops"] == pytest.approx(want["mean_flops"], rel=1e-6)
    assert record["speedup"] == pytest.approx(want["speedup"], rel=1e-6)
    assert record["exit_histogram"] == np.bincount(
        loop["exit_layer"] - 1, minlength=4).tolist()
    layers_used |= set(loop["exit_layer"].tolist())
  if name != "patience":  # 60 samples rarely agree 3 times in a row
    assert len(layers_used) >= 3, "too few exit layers: a trivial test"


def test_agrees_with_evaluate_collect_outputs(model, dataset):
  table = flops_lib.flops_table(model.get_config(), 16)
  criterion = criteria.ExitCriterion()
  one_pass = sweep.collect(model, dataset, criterion)
  got = sweep.derive(one_pass, (0.6,), table)[0]
  want = evaluate.summarize(
      evaluate.collect_outputs(model, dataset, 0.6, table, criterion), 0.6,
      table)
  assert {k: got[k] for k in want if k not in ("mean_flops", "speedup")} == {
      k: want[k] for k in want if k not in ("mean_flops", "speedup")}
  # (Speed 0's cost is assigned by both sides; that the students really
  # are skipped there is test_early_exit's counting test.)
  assert got["speedup"] == pytest.approx(want["speedup"], rel=1e-6)


def test_classifier_accuracy_and_uncertainty_bins():
  one_pass = sweep.OnePass(
      scores=np.array([[0.05, 0.0], [0.15, 1.0], [0.12, 0.5], [1.0, 0.99]],
                      np.float32),
      predictions=np.array([[1, 1], [0, 1], [1, 0], [0, 0]], np.int32),
      labels=np.array([1, 1, 0, 0], np.int32))
  assert sweep.classifier_accuracy(one_pass) == [0.5, 1.0]
  bins = sweep.accuracy_by_uncertainty(one_pass, 1, num_bins=10)
  assert bins["counts"] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]  # 1.0 in the last
  assert bins["accuracy"][:3] == [1.0, 0.0, None]
  assert bins["accuracy"][9] == 1.0
  with pytest.raises(sweep.SweepError, match="layers 1..2"):
    sweep.accuracy_by_uncertainty(one_pass, 3)
  assert sweep.default_uncertainty_layers(12) == [1, 6, 12]
  assert sweep.default_uncertainty_layers(2) == [1, 2]


def test_parse_speeds():
  grid = sweep.parse_speeds("0:1:0.05")
  assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0
  assert grid[3] == 0.15  # not 0.15000000000000002
  assert sweep.parse_speeds("0:1:0.3") == (0.0, 0.3, 0.6, 0.9)
  assert sweep.parse_speeds("0.1:0.3:0.1") == (0.1, 0.2, 0.3)
  assert sweep.parse_speeds("0.5:0.5:0.1") == (0.5,)
  assert sweep.parse_speeds(" 0, 0.1,0.8 ") == (0.0, 0.1, 0.8)
  for bad, why in (("0:1.5:0.5", r"\[0, 1\]"), ("-0.1,0.5", r"\[0, 1\]"),
                   ("0:1:0", "step"), ("0:1", "start:stop:step"),
                   ("a,b", "comma list"), ("", "no speeds"),
                   ("0.5:0.1:0.1", "no speeds")):
    with pytest.raises(sweep.SweepError, match=why):
      sweep.parse_speeds(bad)


def _records(*rows):
  return [dict(speed=s, accuracy=a, speedup=x, mean_exit_layer=1.0)
          for s, a, x in rows]


def test_choose_speed():
  dev = _records((0.0, 0.90, 1.0), (0.2, 0.895, 1.5), (0.4, 0.88, 2.5),
                 (0.6, 0.893, 3.0), (0.8, 0.85, 4.0))
  # Largest qualifying speed, even past one that fails (0.4).
  chosen, message = sweep.choose_speed(dev, 0.90, accuracy_drop=1.0)
  assert chosen["speed"] == 0.6 and "meets" in message
  chosen, _ = sweep.choose_speed(dev, 0.90, accuracy_drop=0.0)
  assert chosen["speed"] == 0.0
  chosen, _ = sweep.choose_speed(dev, 0.90, accuracy_drop=0.5)
  assert chosen["speed"] == 0.2  # 0.895 is exactly 0.90 - 0.5 points
  # Smallest qualifying speed.
  chosen, _ = sweep.choose_speed(dev, 0.90, speedup=2.5)
  assert chosen["speed"] == 0.4
  chosen, message = sweep.choose_speed(dev, 0.90, speedup=5.0)
  assert chosen is None
  assert "no speed meets speedup >= 5x" in message and "4.00x" in message
  chosen, message = sweep.choose_speed(dev[1:], 0.95, accuracy_drop=1.0)
  assert chosen is None and "no speed meets accuracy >= 94.00%" in message
  with pytest.raises(sweep.SweepError, match="exactly one"):
    sweep.choose_speed(dev, 0.9, accuracy_drop=1.0, speedup=2.0)
  with pytest.raises(sweep.SweepError, match="exactly one"):
    sweep.choose_speed(dev, 0.9)


def test_paper_table():
  book = paper_results.lookup("Book review")
  assert book.bert_accuracy == 86.88
  assert [p.speed for p in book.points] == [0.1, 0.5, 0.8]
  assert book.points[2] == paper_results.PaperPoint(0.8, 85.14, 3012, 7.23)
  assert paper_results.lookup("ag_news").dataset == "Ag.News"
  assert paper_results.lookup("LCQMC").dataset == "LCQMC (pairs)"
  assert len(paper_results.names()) == 12
  with pytest.raises(ValueError, match="Book review, Shopping review"):
    paper_results.lookup("SST-2")
  for row in paper_results.TABLE_2:  # transcription check: FLOPs vs speedup
    for p in row.points:
      assert 21785 / p.mflops == pytest.approx(p.speedup, rel=0.01), row


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model, encoder):
  root = tmp_path_factory.mktemp("sweep")
  saving.save_model(model, encoder, str(root / "model"))
  return testing.write_letter_task(root, dev=24, test=40)


def test_run_sweep_chooses_a_speed_on_dev(saved):
  cfg = reporting.SweepConfig(
      model_dir=str(saved / "model"), output_dir=str(saved / "lib"),
      speeds=(0.0, 0.5, 1.0), data=str(saved), target_accuracy_drop=100.0,
      histogram_speeds=(0.5,), uncertainty_layers=(2,))
  results = reporting.run_sweep(cfg)
  target = results["target"]
  assert target["met"] and target["chosen_speed"] == 1.0
  assert target["dev_num_samples"] == 24
  assert target["test"] == results["speeds"][2]
  assert [b["layer"] for b in results["accuracy_by_uncertainty"]] == [2]
  assert "serve speed 1" in reporting.summary_text(results)
  card = (saved / "lib" / "MODEL_CARD.md").read_text()
  assert "**Recommended speed: 1**" in card
  assert "| 0.5 | " in card and "(40 texts)" in card


def test_run_sweep_max_samples_takes_the_first_n(saved):
  cfg = reporting.SweepConfig(
      model_dir=str(saved / "model"), output_dir=str(saved / "first"),
      speeds=(0.0, 0.5), data=str(saved), max_samples=7,
      histogram_speeds=(0.5,), uncertainty_layers=(2,))
  results = reporting.run_sweep(cfg)
  assert results["num_samples"] == 7
  assert all(r["num_samples"] == 7 for r in results["speeds"])


def _sweep_cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "fastbert_tf.sweep", *args],
                        cwd=ROOT, capture_output=True, text=True, env=env,
                        timeout=300)


def test_cli_writes_every_output(saved):
  out = saved / "cli"
  result = _sweep_cli(f"--model_dir={saved / 'model'}", f"--data={saved}",
                      "--speeds=0:1:0.25", f"--output_dir={out}",
                      "--paper_dataset=Book review", "--target_speedup=1000",
                      "--exit_criterion=max_prob", "--batch_size=7")
  # A target no speed meets: status 3, message, every output still written.
  assert result.returncode == 3, result.stderr[-3000:]
  assert "target not met" in result.stderr and "no speed meets" in result.stderr
  assert "speedup" in result.stdout and "0.75" in result.stdout
  results = json.loads((out / "sweep.json").read_text())
  assert [r["speed"] for r in results["speeds"]] == [0, 0.25, 0.5, 0.75, 1]
  assert results["num_samples"] == 40 and results["split"] == "test"
  assert results["criterion"]["name"] == "max_prob"
  assert len(results["classifier_accuracy"]) == 4
  assert results["target"]["met"] is False
  assert results["target"]["chosen_speed"] is None
  assert results["paper"]["dataset"] == "Book review"
  for r in results["speeds"]:
    assert sum(r["exit_histogram"]) == 40
  csv_lines = (out / "sweep.csv").read_text().splitlines()
  assert csv_lines[0].startswith("speed,accuracy,mean_exit_layer,mean_flops")
  assert csv_lines[0].endswith("exit_layer_4") and len(csv_lines) == 6
  for name in plots.FILES.values():
    data = (out / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name


def test_cli_usage_errors(saved):
  for args, want in ((["--speeds=0:2:0.5"], "[0, 1]"),
                     (["--paper_dataset=SST-2"], "Book review"),
                     (["--target_speedup=2", "--target_accuracy_drop=1"],
                      "at most one"),
                     ([], "--output_dir is required")):
    output_dir = [] if not args else [f"--output_dir={saved / 'bad'}"]
    result = _sweep_cli(f"--model_dir={saved / 'model'}", *output_dir, *args)
    assert result.returncode == 1 and want in result.stderr, result.stderr
  assert not (saved / "bad").exists()


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
