"""Figures of a threshold sweep (the paper's Figs. 3-5), as PNG files.

Here the curves over the speed (Fig. 3) and `save_all`; the per-layer
figures (exit histogram, accuracy by uncertainty, each classifier's
accuracy) are in reporting.layer_plots.

Every function takes plain sweep data (the records and lists written to
sweep.json, so figures can be redrawn from that file) and returns a
matplotlib Figure. Figures are made without pyplot and drawn on an Agg
canvas of their own: no display is needed and the process-wide backend (a
notebook's, say) is left alone.
"""

import os

from fastbert_tf.reporting import layer_plots

OURS = dict(color="tab:blue", marker="o", markersize=4, linewidth=1.8)
# Black crosses on a dashed line: distinct from ours in colour, marker and
# dash, so the overlay reads in greyscale too.
PAPER = dict(color="black", marker="x", markersize=9, markeredgewidth=2,
             linestyle="--", linewidth=1.2)
FILES = {
    "accuracy_vs_speed": "accuracy_vs_speed.png",
    "speedup_vs_speed": "speedup_vs_speed.png",
    "accuracy_vs_speedup": "accuracy_vs_speedup.png",
    "exit_histogram": "exit_histogram.png",
    "accuracy_by_uncertainty": "accuracy_by_uncertainty.png",
    "classifier_accuracy": "classifier_accuracy.png",
}


def _min_accuracy_span(ax, span=4.0):
  """Widens a zoomed accuracy axis to at least `span` points, so that a
  0.2-point wobble does not look like a cliff."""
  lo, hi = ax.get_ylim()
  if hi - lo < span:
    mid = (lo + hi) / 2
    ax.set_ylim(mid - span / 2, mid + span / 2)


# The speed a sweep's --target_* chose: a green star on the speed plots.
TARGET = dict(color="tab:green", marker="*", markersize=15, linestyle="none",
              zorder=5)


def paper_label(paper):
  """Names the paper's backbone and dataset, so the overlay is never read
  as this model's numbers."""
  return f"paper (BERT-base), {paper.dataset} (FastBERT Table 2)"


def target_label(target):
  """'chosen speed 0.3 (accuracy drop <= 1 point on dev)' for sweep.json's
  target dict."""
  if target.get("target_accuracy_drop") is not None:
    drop = target["target_accuracy_drop"]
    goal = f"accuracy drop <= {drop:g} point{'' if drop == 1 else 's'}"
  else:
    goal = f"speedup >= {target['target_speedup']:g}x"
  return (f"chosen speed {target['chosen_speed']:g} ({goal} on "
          f"{target['dev_split']})")


def _mark_target(ax, records, target, x_key, y_key):
  """Stars the record at the target's chosen speed (if one was chosen)."""
  if not target or not target.get("met"):
    return
  point = next((r for r in records
                if abs(r["speed"] - target["chosen_speed"]) < 1e-9), None)
  if point is not None:
    scale = 100 if y_key == "accuracy" else 1
    ax.plot([point[x_key]], [scale * point[y_key]],
            label=target_label(target), **TARGET)


def _pct(records):
  return [100 * r["accuracy"] for r in records]


def _column(records, key):
  return [r[key] for r in records]


def _paper_baseline(ax, paper):
  ax.axhline(paper.bert_accuracy, color="dimgray", linestyle=":",
             linewidth=1.2, label=f"paper: BERT-base full model, "
             f"{paper.bert_accuracy:.2f}%")


def plot_accuracy_vs_speed(records, paper=None, title="", target=None,
                           ours="this model"):
  """Accuracy (%) against speed; the paper's points when `paper` is given.

  Args:
    records: list of sweep records (speed, accuracy in [0, 1], ...).
    paper: paper_results.PaperResult or None.
    title: str, figure title.
    target: sweep.json's target dict or None; a met target's chosen speed
      is starred (also in the other speed plots).
    ours: str, the legend label of this model's line (every plot).

  Returns:
    matplotlib.figure.Figure.
  """
  fig, ax = layer_plots.new_figure(title)
  ax.plot(_column(records, "speed"), _pct(records), label=ours, **OURS)
  _mark_target(ax, records, target, "speed", "accuracy")
  if paper:
    ax.plot([p.speed for p in paper.points], [p.accuracy for p in paper.points],
            label=paper_label(paper), **PAPER)
    _paper_baseline(ax, paper)
  ax.set_xlabel("speed (exit threshold)")
  ax.set_ylabel("accuracy (%)")
  ax.set_xlim(-0.02, 1.02)
  _min_accuracy_span(ax)
  ax.legend(loc="best", fontsize=9)
  return fig


def plot_speedup_vs_speed(records, paper=None, max_speedup=None, title="",
                          target=None, ours="this model"):
  """FLOPs speedup against speed.

  Args:
    records: list of sweep records.
    paper: paper_results.PaperResult or None.
    max_speedup: float or None; this model's ceiling (every sample leaving
      after layer 1), drawn as a dotted line.
    title: str.

  Returns:
    matplotlib.figure.Figure.
  """
  fig, ax = layer_plots.new_figure(title)
  ax.plot(_column(records, "speed"), _column(records, "speedup"),
          label=ours, **OURS)
  _mark_target(ax, records, target, "speed", "speedup")
  ax.axhline(1.0, color="dimgray", linestyle="-", linewidth=0.8,
             label="full model (1x); below it the students cost more "
             "than they save")
  if max_speedup:
    ax.axhline(max_speedup, color="tab:blue", linestyle=":", linewidth=1.2,
               label=f"this model's ceiling (all exit at layer 1), "
               f"{max_speedup:.2f}x")
  if paper:
    ax.plot([p.speed for p in paper.points], [p.speedup for p in paper.points],
            label=paper_label(paper), **PAPER)
  ax.set_xlabel("speed (exit threshold)")
  ax.set_ylabel("speedup (full-model FLOPs / mean FLOPs)")
  ax.set_xlim(-0.02, 1.02)
  ax.set_ylim(bottom=0)
  ax.legend(loc="upper left", fontsize=9)
  return fig


def plot_accuracy_vs_speedup(records, paper=None, annotate=(0.1, 0.5, 0.8),
                             title="", target=None, ours="this model"):
  """Accuracy (%) against speedup, the trade-off curve (paper Fig. 3).

  Args:
    records: list of sweep records.
    paper: paper_results.PaperResult or None.
    annotate: speeds whose points are labelled with their speed.
    title: str.

  Returns:
    matplotlib.figure.Figure.
  """
  fig, ax = layer_plots.new_figure(title)
  ax.plot(_column(records, "speedup"), _pct(records), label=ours, **OURS)
  _mark_target(ax, records, target, "speedup", "accuracy")
  for r in records:
    if any(abs(r["speed"] - s) < 1e-9 for s in annotate):
      ax.annotate(f"{r['speed']:g}", (r["speedup"], 100 * r["accuracy"]),
                  textcoords="offset points", xytext=(4, 6), fontsize=8,
                  color="tab:blue")
  if paper:
    xs = [1.0] + [p.speedup for p in paper.points]
    ys = [paper.bert_accuracy] + [p.accuracy for p in paper.points]
    ax.plot(xs, ys, label=paper_label(paper) + " (1x = BERT)", **PAPER)
    for text, x, y in [("BERT", 1.0, paper.bert_accuracy)] + [
        (f"{p.speed:g}", p.speedup, p.accuracy) for p in paper.points]:
      ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, -12),
                  fontsize=8)
  ax.set_xlabel("speedup (full-model FLOPs / mean FLOPs)")
  ax.set_ylabel("accuracy (%)")
  ax.set_xlim(left=min(0.9, min(_column(records, "speedup")) - 0.1))
  _min_accuracy_span(ax)
  ax.legend(loc="best", fontsize=9, title="numbers at points: speed",
            title_fontsize=8)
  return fig


def save_all(results, output_dir, paper=None):
  """Draws every figure of a sweep and writes them as PNGs.

  Args:
    results: the sweep.json dict (speeds, histogram_speeds,
      accuracy_by_uncertainty, classifier_accuracy, criterion, num_layers,
      split, and `target` when a speed was chosen: starred).
    output_dir: str, existing directory.
    paper: paper_results.PaperResult or None, overlaid on the speed plots.

  Returns:
    dict: figure name -> written path.
  """
  records = results["speeds"]
  title = (f"{os.path.basename(os.path.normpath(results['model_dir']))}: "
           f"{results['split']} split ({results['num_samples']} samples), "
           f"criterion {results['criterion']['name']}")
  # What this model is, beside the paper's BERT-base on its own data.
  layers = results.get("num_layers")
  speed_kwargs = dict(target=results.get("target"), ours=(
      "this model" + (f" ({layers} layers)" if layers else "") +
      f", {results['split']} split"))
  figures = dict(
      accuracy_vs_speed=plot_accuracy_vs_speed(records, paper, title,
                                               **speed_kwargs),
      speedup_vs_speed=plot_speedup_vs_speed(
          records, paper, results["max_speedup"], title, **speed_kwargs),
      accuracy_vs_speedup=plot_accuracy_vs_speedup(records, paper,
                                                   title=title,
                                                   **speed_kwargs),
      exit_histogram=layer_plots.plot_exit_histogram(results["histogram_speeds"], title),
      accuracy_by_uncertainty=layer_plots.plot_accuracy_by_uncertainty(
          results["accuracy_by_uncertainty"], results["criterion"]["name"],
          title),
      classifier_accuracy=layer_plots.plot_classifier_accuracy(
          results["classifier_accuracy"], title))
  paths = {}
  for name, fig in figures.items():
    paths[name] = os.path.join(output_dir, FILES[name])
    fig.savefig(paths[name])
  return paths
