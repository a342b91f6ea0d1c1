"""The FastBERT paper's reference results (Table 2) as data, for overlays.

Source: Liu et al., ACL 2020 (arXiv 2004.02178), Table 2, as transcribed in
PAPER.md §5. BERT-base (Google, Chinese or English), sequence length 128;
FLOPs per sample in the paper's unit (fastbert_tf/inference/flops.py).
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class PaperPoint:
  """One FastBERT operating point.

  Attributes:
    speed: float, the threshold.
    accuracy: float, percent.
    mflops: float, mean FLOPs per sample in millions.
    speedup: float, baseline FLOPs / mean FLOPs.
  """
  speed: float
  accuracy: float
  mflops: float
  speedup: float


@dataclasses.dataclass(frozen=True)
class PaperResult:
  """One dataset's row of Table 2.

  Attributes:
    dataset: str, the row name as PAPER.md spells it.
    bert_accuracy: float, percent, plain BERT-base (the full model).
    points: tuple of PaperPoint at speeds 0.1, 0.5, 0.8.
  """
  dataset: str
  bert_accuracy: float
  points: tuple

  def to_json(self):
    return dict(dataset=self.dataset, bert_accuracy=self.bert_accuracy,
                points=[dataclasses.asdict(p) for p in self.points])


def _row(dataset, bert, *points):
  return PaperResult(dataset, bert, tuple(
      PaperPoint(speed, *point)
      for speed, point in zip((0.1, 0.5, 0.8), points)))


# accuracy %, MFLOPs, speedup at speeds 0.1 / 0.5 / 0.8.
TABLE_2 = (
    _row("ChnSentiCorp", 95.25, (95.25, 10741, 2.02), (92.00, 3191, 6.82),
         (89.75, 2315, 9.40)),
    _row("Book review", 86.88, (86.88, 13613, 1.60), (86.64, 5170, 4.21),
         (85.14, 3012, 7.23)),
    _row("Shopping review", 96.84, (96.79, 4885, 4.45), (96.42, 2517, 8.65),
         (95.72, 2087, 10.4)),
    _row("LCQMC (pairs)", 86.68, (86.59, 12930, 1.68), (84.05, 6352, 3.42),
         (77.45, 3310, 6.57)),
    _row("Weibo", 97.69, (97.71, 3691, 5.90), (97.72, 3341, 6.51),
         (97.69, 1982, 11.0)),
    _row("THUCNews", 96.71, (96.71, 3595, 6.05), (95.64, 1979, 11.0),
         (94.97, 1854, 11.74)),
    _row("Ag.News", 94.47, (94.38, 6013, 3.62), (93.14, 2108, 10.33),
         (92.53, 1858, 11.72)),
    _row("Amz.F", 65.50, (65.50, 21005, 1.03), (64.64, 10047, 2.16),
         (61.70, 2356, 9.24)),
    _row("DBpedia", 99.31, (99.28, 2060, 10.57), (99.05, 1854, 11.74),
         (99.04, 1853, 11.75)),
    _row("Yahoo", 77.36, (77.37, 16172, 1.35), (76.57, 4852, 4.48),
         (75.05, 1965, 11.08)),
    _row("Yelp.F", 65.93, (65.93, 20659, 1.05), (64.73, 9827, 2.21),
         (60.66, 2602, 8.37)),
    _row("Yelp.P", 96.04, (95.99, 6668, 3.26), (95.32, 3456, 6.30),
         (94.31, 2460, 8.85)),
)

# Paper Fig. 5, Book review: share of samples leaving after layer 1 at 0.8.
BOOK_REVIEW_FIRST_LAYER_EXIT_AT_0_8 = 0.61


def names():
  """The dataset names, in Table 2 order."""
  return [r.dataset for r in TABLE_2]


def _key(name):
  # "Ag.News", "ag news", "AG_NEWS" are one dataset; so are "LCQMC (pairs)"
  # and "LCQMC".
  name = re.sub(r"\(.*?\)", "", name)
  return re.sub(r"[^a-z0-9]", "", name.lower())


def lookup(name):
  """The Table 2 row of a dataset, matched ignoring case and punctuation.

  Args:
    name: str, e.g. "Book review", "Ag.News", "ag_news", "LCQMC".

  Returns:
    PaperResult.

  Raises:
    ValueError: unknown name; the message lists the known ones.
  """
  for row in TABLE_2:
    if _key(row.dataset) == _key(name):
      return row
  raise ValueError(f"unknown paper dataset {name!r}; PAPER.md §5 has: "
                 f"{', '.join(names())}")
