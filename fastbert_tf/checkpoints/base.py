"""The engine every reader shares: a name table applied with strict checks.

A reader describes a foreign checkpoint as data:
  * `MAP`: {target weight pattern: (source tensor pattern, layout)}, one row
    per FastBertBackbone weight. Patterns hold `{i}` (layer index) and the
    reader's own fields (e.g. `{prefix}`); target paths are relative to the
    backbone (`transformer_layer_{i}/self_attention_layer/query/kernel`).
  * `UNUSED`: ((regex, reason), ...) for source tensors that are knowingly
    left out (pooler, MLM/NSP heads, buffers, optimizer slots...).
`apply_map` then checks everything before writing anything: every backbone
weight has exactly one row, every row's source exists with the expected
shape, every source tensor is consumed or knowingly unused. A failure names
every offending tensor at once, and leaves the backbone untouched.
"""

import dataclasses
import re
from typing import Callable

import numpy as np

# Also part of this module's interface (readers and bench/ use them).
from fastbert_tf.checkpoints.layouts import convert
from fastbert_tf.checkpoints.layouts import expected_source_shape
from fastbert_tf.checkpoints.layouts import LAYOUTS
from fastbert_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
  """What a checkpoint says about itself, without its weights.

  Attributes:
    format: "huggingface", "google_tf1", "keras_hub", "uer" or "fastbert_tf".
    architecture: FastBertBackbone kwargs in keras-hub names (vocabulary_size,
      num_layers, num_heads, hidden_dim, intermediate_dim,
      max_sequence_length, num_segments, layer_norm_epsilon, activation; plus
      layer_norm_type for UER checkpoints).
    vocab_path: str, the checkpoint's vocab.txt, or None if it has none.
    lowercase: bool, from the checkpoint's tokenizer config, else True.
    input_format: "bert", "uer" or "xlmr", how the encoder frames inputs
      for it (data.packing.FRAMINGS; UER checkpoints were trained on
      `[CLS] a` with segment ids 1/2, XLM-R-family ones on `<s> a </s>`).
    sentencepiece_model: bytes, a serialized SentencePiece ModelProto in
      model-id order, for checkpoints tokenized by SentencePiece (then
      vocab_path is None); None for WordPiece.
    text_prefix: str the model expects before every text (multilingual-e5:
      "query: "), "" for none.
    kept_ids: int32 numpy [rows] or None: a pruned model's tokenizer ids in
      embedding-row order (data.tokenizer.Encoder.kept_ids).
  """
  format: str
  architecture: dict
  vocab_path: str | None
  lowercase: bool
  input_format: str = "bert"
  sentencepiece_model: bytes | None = None
  text_prefix: str = ""
  kept_ids: object = None


@dataclasses.dataclass(frozen=True)
class ConversionReport:
  """What `restore_backbone` did.

  Attributes:
    format: the checkpoint format.
    path: the checkpoint path.
    consumed: {source tensor name: backbone weight path it was written to}.
    unused: {source tensor name: why it was knowingly left out}.
  """
  format: str
  path: str
  consumed: dict
  unused: dict

  def summary(self):
    reasons = sorted(set(self.unused.values()))
    return (f"{self.path} ({self.format}): {len(self.consumed)} tensors "
            f"written, {len(self.unused)} knowingly unused"
            + (f" ({'; '.join(reasons)})" if reasons else ""))


class CheckpointMismatchError(UserError, ValueError):
  """The checkpoint does not fit the backbone, or holds unknown tensors."""


@dataclasses.dataclass(frozen=True)
class TensorSource:
  """Tensor names and shapes up front, values loaded on demand.

  Lazy so that a checkpoint with optimizer slots is checked from its index
  without reading three times the model size.
  """
  shapes: dict
  load: Callable[[str], np.ndarray]

  @classmethod
  def from_arrays(cls, arrays):
    arrays = dict(arrays)
    return cls({k: tuple(np.shape(v)) for k, v in arrays.items()},
               lambda name: np.asarray(arrays[name]))

  @classmethod
  def from_keras_model(cls, model):
    """Every weight of a Keras model, named by its path below the model."""
    prefix = model.name + "/"
    return cls.from_arrays(
        {w.path[len(prefix):] if w.path.startswith(prefix) else w.path:
         w.numpy() for w in model.weights})


def keep_rows(source, rows, target, kept_ids, path):
  """The TensorSource with the tensor that `rows` map onto `target` cut to
  the rows `kept_ids` (in that order): vocabulary pruning.

  Raises:
    CheckpointMismatchError: no row writes `target`, or an id is out of the
      tensor's range.
  """
  names = [s for s, t, _ in rows if t == target]
  if len(names) != 1 or names[0] not in source.shapes:
    raise CheckpointMismatchError(f"{path}: cannot prune: no single source "
                                  f"tensor maps onto {target!r}")
  name = names[0]
  kept = np.asarray(kept_ids, np.int64)
  full = tuple(source.shapes[name])
  if kept.size and (kept.min() < 0 or kept.max() >= full[0]):
    raise CheckpointMismatchError(
        f"{path}: kept ids reach {int(kept.max())}, but {name!r} has only "
        f"{full[0]} rows")
  shapes = dict(source.shapes)
  shapes[name] = (len(kept),) + full[1:]

  def load(tensor):
    value = source.load(tensor)
    return value[kept] if tensor == name else value
  return TensorSource(shapes, load)


def backbone_weights(backbone):
  """{path relative to the backbone: variable} for every backbone weight.

  Keras prefixes paths with the enclosing layers' names (`backbone/` alone,
  `fast_bert_classifier/backbone/` inside a model): strip what precedes the
  stable sublayer names.
  """
  weights = backbone.weights
  anchor = "embeddings/token_embedding/"
  first = weights[0].path
  if anchor not in first:
    raise ValueError(f"unexpected first backbone weight {first!r}")
  prefix = first[:first.index(anchor)]
  out = {}
  for w in weights:
    if not w.path.startswith(prefix) or w.path[len(prefix):] in out:
      raise ValueError(f"cannot address backbone weight {w.path!r}")
    out[w.path[len(prefix):]] = w
  return out


def expand_map(table, num_layers, **fields):
  """{target: (source, layout)} patterns -> [(source, target, layout)]."""
  rows = []
  for target, (source, layout) in table.items():
    if layout not in LAYOUTS:
      raise ValueError(f"map row {target!r}: unknown layout {layout!r}")
    layers = range(num_layers) if "{i}" in target else [None]
    for i in layers:
      values = dict(fields, i=i) if i is not None else fields
      rows.append((source.format(**values), target.format(**values), layout))
  return rows


def apply_map(backbone, source, rows, unused_patterns, fmt, path):
  """Checks `rows` against the backbone and the source, then writes them.

  Args:
    backbone: a built FastBertBackbone.
    source: TensorSource of the checkpoint.
    rows: [(source name, target path, layout)], from `expand_map`.
    unused_patterns: ((regex, reason), ...) of knowingly unused tensors.
    fmt, path: for messages and the report.

  Returns:
    ConversionReport.

  Raises:
    CheckpointMismatchError: listing every missing, unexpected or misshapen
      tensor; nothing has been written then.
  """
  targets = backbone_weights(backbone)
  _check_targets(rows, targets)
  consumed = {s: t for s, t, _ in rows}
  unused, unexpected = {}, []
  for name in sorted(set(source.shapes) - set(consumed)):
    reason = _unused_reason(name, unused_patterns)
    if reason is None:
      unexpected.append(name)
    else:
      unused[name] = reason
  problems = _source_problems(source, rows, targets)
  if unexpected:
    problems.append(f"unexpected tensors (neither mapped nor known to be "
                    f"unused): {_few(unexpected)}")
  if problems:
    raise CheckpointMismatchError(
        f"{path} ({fmt}) does not fit the backbone:\n  - " +
        "\n  - ".join(problems))
  for name, target, layout in rows:
    variable = targets[target]
    value = convert(layout, source.load(name), tuple(variable.shape))
    variable.assign(value.astype(variable.dtype))
  return ConversionReport(fmt, path, consumed, unused)


def _source_problems(source, rows, targets):
  """Messages for rows whose source tensor is missing or misshapen."""
  problems = []
  missing = [s for s, _, _ in rows if s not in source.shapes]
  if missing:
    problems.append(f"missing tensors the backbone needs: {_few(missing)}")
  for name, target, layout in rows:
    if name not in source.shapes:
      continue
    want = expected_source_shape(layout, targets[target].shape)
    if tuple(source.shapes[name]) != want:
      problems.append(
          f"shape mismatch: source tensor {name!r} has shape "
          f"{tuple(source.shapes[name])}, target weight {target!r} "
          f"(shape {tuple(targets[target].shape)}) expects {want}")
  if len(problems) > _MAX_LISTED + 2:
    problems = problems[:_MAX_LISTED] + [
        f"... and {len(problems) - _MAX_LISTED} more problems"]
  return problems


def _check_targets(rows, targets):
  """Every backbone weight written by exactly one row (a table bug if not)."""
  written = [t for _, t, _ in rows]
  twice = sorted({t for t in written if written.count(t) > 1})
  unknown = sorted(set(written) - set(targets))
  unwritten = sorted(set(targets) - set(written))
  if twice or unknown or unwritten:
    raise CheckpointMismatchError(
        "the converter's map does not cover the backbone exactly: "
        f"written twice {twice}, not in the backbone {unknown}, "
        f"never written {unwritten}")


_MAX_LISTED = 40


def _few(names):
  """A list for a message, cut after _MAX_LISTED names (with the count)."""
  if len(names) <= _MAX_LISTED:
    return str(list(names))
  return f"{list(names[:_MAX_LISTED])} ... and {len(names) - _MAX_LISTED} more"


def _unused_reason(name, patterns):
  for pattern, reason in patterns:
    if re.fullmatch(pattern, name):
      return reason
  return None


def check_architecture(backbone, info, path):
  """Raises naming every backbone setting that differs from the checkpoint.

  Shapes alone would not catch a different activation, epsilon or
  LayerNorm kind: those would silently change every activation.
  """
  expected = dict(info.architecture)
  expected.setdefault("layer_norm_type", "bert")
  diffs = []
  for key, want in expected.items():
    have = getattr(backbone, key, "bert" if key == "layer_norm_type" else None)
    if have != want:
      diffs.append(f"{key}: backbone has {have!r}, checkpoint needs {want!r}")
  if diffs:
    raise CheckpointMismatchError(
        f"{path} ({info.format}): the backbone's architecture differs from "
        "the checkpoint's; build it from read_info(path).architecture:\n  - "
        + "\n  - ".join(diffs))
