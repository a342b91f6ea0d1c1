"""How a source tensor's layout becomes a FastBertBackbone weight's shape.

A reader's MAP row names a layout per weight: "same" (copied), "flat"
(reshaped from one dimension) or a kernel split, where the target's
dimensions divide into (input dims, output dims); "*_t" layouts are PyTorch
Linear weights, stored [out, in], and are transposed first.
"""

import math

import numpy as np

# Layout -> where a target kernel splits into (input dims, output dims).
_SPLITS = {"kernel": 1, "kernel_t": 1, "out_kernel": 2, "out_kernel_t": 2}
LAYOUTS = ("same", "flat") + tuple(_SPLITS)


def expected_source_shape(layout, target_shape):
  """The source shape a layout maps onto `target_shape` (tuple of int)."""
  t = tuple(int(d) for d in target_shape)
  if layout == "same":
    return t
  if layout == "flat":
    return (math.prod(t),)
  k = _SPLITS[layout]
  shape = (math.prod(t[:k]), math.prod(t[k:]))
  return shape[::-1] if layout.endswith("_t") else shape


def convert(layout, array, target_shape):
  """Source array -> array of `target_shape` (transpose, then reshape)."""
  if layout.endswith("_t"):
    array = array.T
  return np.reshape(array, target_shape)
