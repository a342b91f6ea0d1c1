"""Sweep figures: labelled axes, the paper overlay when asked, valid PNGs."""

import sys

import matplotlib.image
import numpy as np
import pytest

from fastbert_tf.reporting import layer_plots
from fastbert_tf.reporting import paper_results
from fastbert_tf.reporting import plots

BOOK = paper_results.lookup("Book review")


def _records(speeds=(0.0, 0.25, 0.5, 0.75, 1.0), num_layers=4):
  records = []
  for s in speeds:
    hist = [int(40 * s), 5, 5, 50 - int(40 * s)]
    records.append(dict(
        speed=s, accuracy=0.9 - 0.05 * s, speedup=1 + 2.5 * s,
        mean_flops=100.0 / (1 + 2.5 * s), num_samples=60,
        mean_exit_layer=float(np.average(np.arange(1, num_layers + 1),
                                         weights=hist)),
        exit_histogram=hist))
  return records


def _bins(layer):
  return dict(layer=layer, bin_edges=list(np.linspace(0, 1, 11)),
              counts=[5, 9, 0, 7, 6, 5, 4, 3, 2, 19],
              accuracy=[1.0, 0.9, None, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5])


def _labelled(fig):
  assert fig.axes
  for ax in fig.axes:
    assert ax.get_ylabel(), ax
  assert fig.axes[-1].get_xlabel()


def _legend_texts(ax):
  legend = ax.get_legend()
  return [t.get_text() for t in legend.get_texts()] if legend else []


SPEED_PLOTS = (
    (plots.plot_accuracy_vs_speed, "speed (exit threshold)", "accuracy (%)"),
    (plots.plot_speedup_vs_speed, "speed (exit threshold)", "speedup"),
    (plots.plot_accuracy_vs_speedup, "speedup", "accuracy (%)"),
)


@pytest.mark.parametrize("plot,xlabel,ylabel", SPEED_PLOTS)
def test_speed_plots_are_labelled_and_overlay_the_paper(plot, xlabel, ylabel):
  plain = plot(_records())
  ax = plain.axes[0]
  assert ax.get_xlabel().startswith(xlabel)
  assert ax.get_ylabel().startswith(ylabel)
  assert not any(t.startswith("paper") for t in _legend_texts(ax))

  ax = plot(_records(), paper=BOOK, title="t").axes[0]
  texts = _legend_texts(ax)
  assert any(t.startswith("paper (BERT-base), Book review") for t in texts)
  paper_lines = [l for l in ax.get_lines()
                 if l.get_label().startswith("paper (BERT-base)")]
  assert len(paper_lines) == 1
  line = paper_lines[0]
  # Distinct from ours: black crosses on a dashed line.
  assert (line.get_marker(), line.get_linestyle()) == ("x", "--")
  assert line.get_color() == "black"
  if ylabel == "speedup":
    assert list(line.get_ydata()) == [1.60, 4.21, 7.23]


TARGET = dict(target_accuracy_drop=1.0, target_speedup=None, dev_split="dev",
              chosen_speed=0.5, met=True)


@pytest.mark.parametrize("plot,x_key,y_key", [
    (plots.plot_accuracy_vs_speed, "speed", "accuracy"),
    (plots.plot_speedup_vs_speed, "speed", "speedup"),
    (plots.plot_accuracy_vs_speedup, "speedup", "accuracy"),
])
def test_chosen_speed_is_starred(plot, x_key, y_key):
  records = _records()
  ax = plot(records, target=TARGET).axes[0]
  stars = [l for l in ax.get_lines() if l.get_marker() == "*"]
  assert len(stars) == 1
  chosen = records[2]  # speed 0.5
  scale = 100 if y_key == "accuracy" else 1
  assert list(stars[0].get_xdata()) == [chosen[x_key]]
  assert list(stars[0].get_ydata()) == pytest.approx([scale * chosen[y_key]])
  assert ("chosen speed 0.5 (accuracy drop <= 1 point on dev)" in
          _legend_texts(ax))
  unmet = dict(TARGET, met=False, chosen_speed=None)
  ax = plot(records, target=unmet).axes[0]
  assert not [l for l in ax.get_lines() if l.get_marker() == "*"]


def test_target_label_names_a_speedup_goal():
  label = plots.target_label(dict(TARGET, target_accuracy_drop=None,
                                  target_speedup=2.0, chosen_speed=0.3))
  assert label == "chosen speed 0.3 (speedup >= 2x on dev)"


def test_accuracy_vs_speed_does_not_magnify_tiny_changes():
  records = _records()
  for r in records:
    r["accuracy"] = 0.807 + 0.002 * (r["speed"] == 1.0)
  low, high = plots.plot_accuracy_vs_speed(records).axes[0].get_ylim()
  assert high - low >= 4.0


def test_exit_histogram_has_a_bar_group_per_speed():
  records = _records(speeds=(0.1, 0.5, 0.8))
  fig = layer_plots.plot_exit_histogram(records)
  _labelled(fig)
  ax = fig.axes[0]
  assert len(ax.patches) == 3 * 4
  assert [t.startswith("speed 0.") for t in _legend_texts(ax)] == [True] * 3
  heights = [p.get_height() for p in ax.patches[:4]]
  assert sum(heights) == pytest.approx(100.0)  # shares of samples, in %


def test_accuracy_by_uncertainty_has_a_line_per_layer():
  fig = layer_plots.plot_accuracy_by_uncertainty([_bins(1), _bins(2), _bins(4)],
                                           "entropy")
  _labelled(fig)
  top, bottom = fig.axes
  assert len(top.get_lines()) == 3
  assert _legend_texts(top) == ["layer 1", "layer 2", "layer 4 (teacher)"]
  assert "entropy" in bottom.get_xlabel()
  # The empty bin (0.2-0.3) is left out, not drawn as 0%.
  assert not np.isclose(top.get_lines()[0].get_xdata(), 0.25).any()
  assert len(top.get_lines()[0].get_xdata()) == 9


def test_classifier_accuracy_bars():
  fig = layer_plots.plot_classifier_accuracy([0.7, 0.8, 0.85, 0.9])
  _labelled(fig)
  ax = fig.axes[0]
  assert [round(p.get_height(), 6) for p in ax.patches] == [70, 80, 85, 90]
  assert "teacher" in ax.get_xticklabels()[-1].get_text()


def test_save_all_writes_valid_pngs(tmp_path):
  results = dict(
      model_dir="/m/runs/quickstart/", split="test", num_samples=60,
      criterion=dict(name="entropy", top_k=2), max_speedup=3.87,
      speeds=_records(), histogram_speeds=_records(speeds=(0.1, 0.5, 0.8)),
      accuracy_by_uncertainty=[_bins(1), _bins(4)],
      classifier_accuracy=[0.7, 0.8, 0.85, 0.9], num_layers=4,
      target=TARGET)
  paths = plots.save_all(results, str(tmp_path), paper=BOOK)
  assert set(paths) == set(plots.FILES)
  for path in paths.values():
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 300, path
    assert image.std() > 0  # not a blank canvas


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
