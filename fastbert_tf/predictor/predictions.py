"""What a Predictor answers (`Predictions`) and the checks of what it is
asked (texts, speeds, sizes); numpy only."""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
  """Per-text answers of `Predictor.predict`, in input order.

  Attributes:
    label: int32 [n], the class id.
    label_name: tuple of n str, the class name (its id as a string when the
      model has no names).
    probabilities: float32 [n, num_classes], of the answering classifier.
    exit_layer: int32 [n], 1-based layer that answered.
    uncertainty: float32 [n], the answering classifier's exit score.
    flops: float32 [n], per-text FLOPs in the paper's unit.
    baseline_flops: float, the full model's FLOPs per text.
  """
  label: np.ndarray
  label_name: tuple
  probabilities: np.ndarray
  exit_layer: np.ndarray
  uncertainty: np.ndarray
  flops: np.ndarray
  baseline_flops: float

  def __len__(self):
    return len(self.label)

  @property
  def mean_exit_layer(self):
    return float(np.mean(self.exit_layer)) if len(self) else math.nan

  @property
  def speedup(self):
    """Full-model FLOPs / mean FLOPs of these texts (paper Table 2)."""
    return (self.baseline_flops / float(np.mean(self.flops)) if len(self)
            else math.nan)

  def record(self, i):
    """Text i's answer as a json-ready dict."""
    return dict(label=int(self.label[i]), label_name=self.label_name[i],
                probabilities=[float(p) for p in self.probabilities[i]],
                exit_layer=int(self.exit_layer[i]),
                uncertainty=float(self.uncertainty[i]),
                flops=float(self.flops[i]))


def check_speeds(speed, n):
  """float or sequence of n floats in [0, 1] -> float32 numpy [n].

  Raises:
    ValueError: naming the bad value (NaN included) or the length.
  """
  values = np.asarray(speed, dtype=np.float64)
  if values.ndim == 0:
    values = np.full([n], float(values))
  elif values.shape != (n,):
    raise ValueError(f"speed must be one float or one per text ({n}), got "
                     f"shape {list(values.shape)}")
  bad = np.flatnonzero(~((values >= 0.0) & (values <= 1.0)))
  if bad.size:
    raise ValueError(f"speed[{bad[0]}] must be a number in [0, 1], got "
                     f"{values[bad[0]]}")
  return values.astype(np.float32)


def checked_texts(name, texts):
  """texts (a list of str or UTF-8 bytes; a lone str is a batch of one) as a
  list of str.

  Raises:
    TypeError: not a list (None, a number).
    ValueError: naming the first item that is not str or valid UTF-8.
  """
  if isinstance(texts, (str, bytes)):
    texts = [texts]
  if texts is None or not hasattr(texts, "__iter__"):
    raise TypeError(f"{name} must be a list of str, got "
                    f"{type(texts).__name__}")
  texts = list(texts)
  for i, text in enumerate(texts):
    if isinstance(text, bytes):
      try:
        text = text.decode("utf-8")
      except UnicodeDecodeError as e:
        raise ValueError(f"{name}[{i}] is not valid UTF-8 ({e.reason} at "
                         f"byte {e.start}); expected str or UTF-8 "
                         "bytes") from None
      texts[i] = text
    if not isinstance(text, str):
      raise ValueError(f"{name}[{i}] must be a str, got "
                       f"{type(text).__name__}")
  return texts


def positive(name, value):
  """int(value), which must be >= 1 (ValueError naming `name` otherwise)."""
  if int(value) < 1:
    raise ValueError(f"{name} must be >= 1, got {value}")
  return int(value)
