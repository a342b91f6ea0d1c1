"""Tests for fastbert_tf.inference.flops and the `fastbert_tf.flops` CLI."""

import json
import os
import subprocess
import sys

import pytest

from fastbert_tf.inference import flops
from fastbert_tf.models import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bert_base(num_classes=2):
  return flops.flops_table(dict(presets.get_preset("bert_base"),
                                num_classes=num_classes), seq_len=128)


def test_bert_base_matches_the_paper_within_0_1_percent():
  table = _bert_base()
  assert table.layer == pytest.approx(1809.9e6, rel=1e-3)
  assert table.classifier == pytest.approx(46.1e6, rel=1e-3)
  assert table.baseline == pytest.approx(21785e6, rel=1e-3)


def test_paper_component_figures():
  # PAPER.md §4: FC 768->128 25.1M, FC 128->128 4.2M per classifier.
  assert flops.dense_flops(128, 768, 128) == pytest.approx(25.1e6, rel=2e-3)
  assert flops.dense_flops(128, 128, 128) == pytest.approx(4.2e6, rel=1e-2)


def test_exit_costs_and_speedup():
  table = _bert_base()
  # Paper-unit figures (PAPER.md §4), not the table's own arithmetic: a
  # sample leaving after layer k paid k layers and k classifiers.
  per_exit = 1811.1e6 + 46.1e6
  assert table.cumulative() == pytest.approx(
      [k * per_exit for k in range(1, 13)], rel=1e-4)
  # Walking every student costs 11 classifiers more than the plain model
  # (one layer stack plus the teacher), why speed 0 skips the students.
  assert table.at_exit(12) - table.baseline == pytest.approx(11 * 46.1e6,
                                                             rel=1e-3)
  # The paper's largest speedup is ~11.75x (exit after layer 1).
  assert table.max_speedup == pytest.approx(11.75, abs=0.05)
  # Contract: speedup is baseline FLOPs over mean FLOPs.
  assert table.speedup(table.baseline / 4) == pytest.approx(4.0)
  for bad in (0, 13):
    with pytest.raises(ValueError, match="exit_layer"):
      table.at_exit(bad)


def test_flops_grow_with_sequence_length_and_classes():
  config = dict(presets.get_preset("bert_base"), num_classes=2)
  assert (flops.flops_table(config, 64).layer <
          flops.flops_table(config, 128).layer)
  assert _bert_base(10).classifier > _bert_base(2).classifier


def test_cli_json():
  out = subprocess.run(
      [sys.executable, "-m", "fastbert_tf.flops", "--preset=bert_base",
       "--max_seq_length=128", "--num_classes=2", "--json"],
      cwd=ROOT, capture_output=True, text=True, check=True).stdout
  report = json.loads(out)
  assert report["flops_per_layer"] == _bert_base().layer
  assert report["baseline_flops"] == _bert_base().baseline
  assert len(report["flops_by_exit_layer"]) == 12
  assert report["max_speedup"] == pytest.approx(11.73, abs=0.01)


def test_cli_text_names_every_figure():
  out = subprocess.run(
      [sys.executable, "-m", "fastbert_tf.flops", "--preset=bert_base"],
      cwd=ROOT, capture_output=True, text=True, check=True).stdout
  assert "1,811.1M" in out and "46.1M" in out and "21,778.8M" in out
  assert "largest speedup" in out


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
