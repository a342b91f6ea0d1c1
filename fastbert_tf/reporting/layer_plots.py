"""Per-layer figures of a threshold sweep: where samples exit (the paper's
Fig. 5), accuracy by uncertainty (Fig. 4) and each classifier's accuracy.

Like reporting.plots (the speed curves and `save_all`, which draws these
too): plain sweep.json data in, a matplotlib Figure out, drawn without
pyplot on an Agg canvas of its own.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np


def new_figure(title, nrows=1, **kwargs):
  """A Figure on its own Agg canvas (no pyplot), with gridded axes.

  Args:
    title: str, the figure's title ("" for none).
    nrows: int, stacked axes.
    **kwargs: Figure.subplots arguments (sharex, gridspec_kw...).

  Returns:
    (Figure, axes or array of axes).
  """
  fig = Figure(figsize=(7.0, 4.8), dpi=130, layout="constrained")
  FigureCanvasAgg(fig)
  axes = fig.subplots(nrows, 1, **kwargs)
  for ax in np.atleast_1d(axes):
    ax.grid(True, alpha=0.3)
  if title:
    fig.suptitle(title, fontsize=10)
  return fig, axes


def plot_exit_histogram(records, title=""):
  """Share of samples leaving after each layer, one bar group per speed
  (paper Fig. 5).

  Args:
    records: sweep records with exit_histogram (counts per layer).
    title: str.

  Returns:
    matplotlib.figure.Figure.
  """
  fig, ax = new_figure(title)
  num_layers = len(records[0]["exit_histogram"])
  layers = np.arange(1, num_layers + 1)
  width = 0.8 / len(records)
  for i, r in enumerate(records):
    counts = np.asarray(r["exit_histogram"], np.float64)
    offset = (i - (len(records) - 1) / 2) * width
    ax.bar(layers + offset, 100 * counts / counts.sum(), width,
           label=f"speed {r['speed']:g} (mean exit layer "
           f"{r['mean_exit_layer']:.2f}, {r['speedup']:.2f}x)")
  ax.set_xticks(layers)
  ax.set_xlabel("exit layer (1 = first student, "
                f"{num_layers} = teacher)")
  ax.set_ylabel("samples (%)")
  ax.set_axisbelow(True)
  ax.grid(False, axis="x")
  # Headroom for the legend above the tallest bar.
  top = min(100.0, ax.get_ylim()[1])
  ax.set_ylim(0, top * 1.3)
  ax.set_yticks(np.arange(0, top + 1e-9, 20 if top > 50 else 10))
  ax.legend(loc="upper center", fontsize=9)
  return fig


def plot_accuracy_by_uncertainty(bins, criterion="entropy", title=""):
  """Accuracy of a few classifiers per uncertainty bin (paper Fig. 4), with
  the share of samples per bin below.

  Args:
    bins: list of dicts from sweep.accuracy_by_uncertainty (layer,
      bin_edges, counts, accuracy with None for empty bins).
    criterion: str, the criterion's name, for the axis label.
    title: str.

  Returns:
    matplotlib.figure.Figure with two axes (accuracy, sample share).
  """
  fig, (top, bottom) = new_figure(title, nrows=2, sharex=True,
                               gridspec_kw=dict(height_ratios=(2, 1)))
  last = max(b["layer"] for b in bins)
  width = 0.8 * np.diff(bins[0]["bin_edges"])[0] / len(bins)
  for i, b in enumerate(bins):
    edges = np.asarray(b["bin_edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    # Empty bins are left out, and the line joins the bins either side:
    # with discrete scores (patience) most bins are empty.
    kept = [(c, 100 * a) for c, a in zip(centers, b["accuracy"])
            if a is not None]
    label = f"layer {b['layer']}" + (" (teacher)" if b["layer"] == last else "")
    line, = top.plot(*zip(*kept), marker="o", markersize=4, label=label)
    counts = np.asarray(b["counts"], np.float64)
    offset = (i - (len(bins) - 1) / 2) * width
    bottom.bar(centers + offset, 100 * counts / counts.sum(), width,
               color=line.get_color())
  bottom.set_axisbelow(True)
  top.set_ylabel("accuracy in bin (%)")
  top.legend(loc="best", fontsize=9)
  bottom.set_ylabel("samples (%)")
  bottom.set_xlabel(f"uncertainty ({criterion} score, 10 equal bins)")
  bottom.set_xlim(0, 1)
  return fig


def plot_classifier_accuracy(accuracies, title=""):
  """Accuracy of every classifier alone (each sample answered by it).

  Args:
    accuracies: list of L floats in [0, 1], layer 1 first.
    title: str.

  Returns:
    matplotlib.figure.Figure.
  """
  fig, ax = new_figure(title)
  pct = 100 * np.asarray(accuracies)
  layers = np.arange(1, len(pct) + 1)
  colors = ["tab:blue"] * (len(pct) - 1) + ["tab:orange"]
  bars = ax.bar(layers, pct, 0.6, color=colors)
  ax.set_axisbelow(True)
  ax.grid(False, axis="x")
  ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
  ax.set_xticks(layers, [str(k) for k in layers[:-1]] +
                [f"{layers[-1]}\n(teacher)"])
  ax.set_xlabel("classifier after layer")
  ax.set_ylabel("accuracy (%)")
  # Zoomed so that differences of a point are visible; bar labels give the
  # exact values.
  ax.set_ylim(max(0.0, pct.min() - 10), min(100.0, pct.max() + 5) + 1)
  return fig
