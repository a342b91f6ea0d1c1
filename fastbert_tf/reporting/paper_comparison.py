"""Our accuracy-vs-speedup curve against the paper's Table 2, point by point.

For each of the paper's points (a speedup s_p reached at an accuracy drop d_p
from the paper's own BERT baseline), our curve is read at s_p by linear
interpolation between swept speeds; the point is met when our drop from our
own speed-0 accuracy is at most d_p + a tolerance. The paper's points at
11.0-11.74x sit at the 12-layer ceiling (exit after layer 1 is ~11.75x), so
s_p is capped at `cap_fraction` x the number of layers. A curve that never
reaches s_p misses the point.

Example:
  >>> curve = [dict(speed=0.0, accuracy=0.90, speedup=1.0),
  ...          dict(speed=0.5, accuracy=0.89, speedup=4.0)]
  >>> accuracy_at_speedup(curve, 2.5)
  0.895
"""

import dataclasses

from fastbert_tf.reporting import paper_results

TOLERANCE_POINTS = 0.3
CAP_FRACTION = 0.95


@dataclasses.dataclass(frozen=True)
class PointComparison:
  """One paper point beside ours.

  Attributes:
    speed: float, the paper's speed (0.1, 0.5 or 0.8).
    paper_speedup: float, s_p as printed in the paper.
    target_speedup: float, s_p capped at CAP_FRACTION x num_layers.
    paper_drop: float, points, the paper's drop from its BERT baseline
      (negative = a gain).
    our_accuracy: float or None, percent, our curve at target_speedup
      (None: the curve does not reach it).
    our_drop: float or None, points, from our speed-0 accuracy.
    met: bool.
  """
  speed: float
  paper_speedup: float
  target_speedup: float
  paper_drop: float
  our_accuracy: object
  our_drop: object
  met: bool


def accuracy_at_speedup(curve, speedup):
  """Accuracy (as a fraction) of `curve` at `speedup`, or None.

  Args:
    curve: list of dicts with `accuracy` (fraction) and `speedup`, any
      order. Where the curve passes `speedup` more than once (speedups
      below 1x at small speeds make it non-monotone), the most accurate
      reading is taken: a user picks that speed.
    speedup: float.

  Returns:
    float, linearly interpolated between the two sweep points that bracket
    `speedup`, or None when no point reaches it.
  """
  points = sorted(curve, key=lambda p: p["speed"])
  readings = [p["accuracy"] for p in points if p["speedup"] == speedup]
  for a, b in zip(points, points[1:]):
    lo, hi = sorted((a["speedup"], b["speedup"]))
    if lo < speedup < hi:
      t = (speedup - a["speedup"]) / (b["speedup"] - a["speedup"])
      readings.append(a["accuracy"] + t * (b["accuracy"] - a["accuracy"]))
  return max(readings) if readings else None


def compare(curve, paper_dataset, num_layers, tolerance=TOLERANCE_POINTS,
            cap_fraction=CAP_FRACTION):
  """Every Table 2 point of `paper_dataset` beside our curve.

  Args:
    curve: list of {speed, accuracy (fraction), speedup}; must hold speed 0.
    paper_dataset: a Table 2 row name (paper_results.lookup).
    num_layers: int, our model's layers (for the speedup cap).
    tolerance: float, points of drop allowed beyond the paper's.
    cap_fraction: float.

  Returns:
    list of PointComparison, one per paper point.

  Raises:
    ValueError: the curve has no speed-0 point, or the dataset is unknown.
  """
  baseline = [p["accuracy"] for p in curve if p["speed"] == 0.0]
  if not baseline:
    raise ValueError("the curve has no speed-0 point (our baseline)")
  row = paper_results.lookup(paper_dataset)
  out = []
  for point in row.points:
    target = min(point.speedup, cap_fraction * num_layers)
    paper_drop = row.bert_accuracy - point.accuracy
    ours = accuracy_at_speedup(curve, target)
    drop = None if ours is None else 100.0 * (baseline[0] - ours)
    out.append(PointComparison(
        speed=point.speed, paper_speedup=point.speedup,
        target_speedup=target, paper_drop=paper_drop,
        our_accuracy=None if ours is None else 100.0 * ours, our_drop=drop,
        met=drop is not None and drop <= paper_drop + tolerance + 1e-9))
  return out
