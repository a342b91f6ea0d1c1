"""Building the encoder and the model of a run: from --init_checkpoint,
--vocab, a learned vocabulary, --preset / --config_json; all checked before
anything is written."""

import os
import tempfile

from absl import logging

from fastbert_tf import paths
from fastbert_tf.data import vocab as vocab_lib
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.errors import ConfigError
from fastbert_tf.models import presets
from fastbert_tf.models.fastbert_classifier import FastBertClassifier


def checkpoint_info(cfg):
  """The --init_checkpoint's CheckpointInfo, or None."""
  if not cfg.init_checkpoint:
    return None
  from fastbert_tf import checkpoints  # pylint: disable=g-import-not-at-top
  # Some readers build the tokenizer, whose error on a repeated token
  # names no file.
  vocab = os.path.join(cfg.init_checkpoint, "vocab.txt")
  if os.path.isfile(vocab):
    paths.check_vocab(vocab, "--init_checkpoint")
  try:
    return checkpoints.read_info(cfg.init_checkpoint)
  except (ValueError, FileNotFoundError, OSError) as e:
    if isinstance(e, ConfigError):
      raise
    raise ConfigError(f"--init_checkpoint={cfg.init_checkpoint}: "
                      f"{_first_line(e)}") from None


def base_architecture(cfg, info=None):
  """FastBertClassifier kwargs without vocabulary_size and num_classes: the
  checkpoint's backbone (a --preset must agree with it and adds its
  classifier settings; else the paper's 128-wide heads), or the
  --config_json / --preset architecture.

  Raises:
    ConfigError: an unknown preset, an unreadable config json, a preset
      that does not describe the checkpoint, or --max_seq_length beyond the
      architecture's positions.
  """
  try:
    preset = presets.get_preset(cfg.preset) if cfg.preset else None
  except ValueError as e:
    raise ConfigError(f"--preset: {e}") from None
  if info:
    arch = dict(info.architecture)
    if preset:
      differ = {k: (v, arch[k]) for k, v in preset.items()
                if k in arch and arch[k] != v}
      if differ:
        raise ConfigError(
            f"--preset={cfg.preset} does not describe --init_checkpoint="
            f"{cfg.init_checkpoint}: (preset, checkpoint) differ in {differ}")
      arch.update({k: preset[k] for k in presets.CLASSIFIER_KEYS
                   if k in preset})
  elif cfg.config_json:
    try:
      arch = presets.load_config_json(cfg.config_json)
    except (OSError, ValueError) as e:
      raise ConfigError(f"--config_json: {_first_line(e)}") from None
  else:
    arch = preset or presets.get_preset("quickstart")
  arch.pop("num_classes", None)
  arch["pooling"] = cfg.pooling or arch.get("pooling", "first")
  arch["dtype"] = cfg.dtype_policy
  if arch.get("max_sequence_length", 512) < cfg.max_seq_length:
    raise ConfigError(
        f"--max_seq_length={cfg.max_seq_length}: exceeds the "
        f"architecture's position table (max_sequence_length="
        f"{arch['max_sequence_length']}); expected at most "
        f"{arch['max_sequence_length']}")
  return arch


def build_encoder(cfg, train, info=None, distill_data=None):
  """The encoder: the checkpoint's SentencePiece model, or WordPiece from
  --vocab, the checkpoint's vocab or a vocabulary learned from the training
  text (in memory: the run writes it with the model); pruned to the ids
  the training (and phase-2) texts use under --prune_vocab."""
  if info and info.sentencepiece_model and not cfg.vocab:
    prefix = info.text_prefix if cfg.text_prefix is None else cfg.text_prefix
    encoder = SentencePieceEncoder(
        info.sentencepiece_model, cfg.max_seq_length,
        text_pair=train.is_pair, input_format=info.input_format,
        text_prefix=prefix, kept_ids=info.kept_ids)
  else:
    encoder = _wordpiece_encoder(cfg, train, info)
  if cfg.prune_vocab:
    if encoder.kept_ids is not None:
      raise ConfigError(f"--prune_vocab: {cfg.init_checkpoint} is already "
                        "pruned; prune from the full checkpoint instead")
    # Phase 2 distills on the train split itself unless --distill_data:
    # count (and tokenize) those texts once.
    sources = [train] + ([distill_data] if distill_data not in (None, train)
                         else [])
    texts = [t for data in sources for t in data.texts_a + (data.texts_b or ())]
    kept = encoder.used_ids(texts)
    logging.info("--prune_vocab: keeping %d of %d tokenizer ids (those the "
                 "%d training and phase-2 texts use, plus specials); other "
                 "ids map to the unknown token's row.", len(kept),
                 encoder.tokenizer_vocabulary_size, len(texts))
    encoder = encoder.replace(kept_ids=kept)
  return encoder


def _wordpiece_encoder(cfg, train, info):
  path = cfg.vocab or (info.vocab_path if info else "")
  lowercase = info.lowercase if info and not cfg.vocab else cfg.lowercase
  if not path:
    logging.info("Learning a %d-token vocabulary from %d training texts.",
                 cfg.vocab_size, len(train))
    texts = list(train.texts_a) + list(train.texts_b or ())
    with tempfile.TemporaryDirectory() as scratch:
      path = os.path.join(scratch, "vocab.txt")
      vocab = vocab_lib.learn_vocab(texts, cfg.vocab_size, path,
                                    cfg.lowercase)
    path = vocab
  else:
    # A repeated token makes the tokenizer's lookup table fail with a
    # RuntimeError that names no file.
    paths.check_vocab(path, "--vocab" if cfg.vocab else "--init_checkpoint")
  try:
    # The packing follows the checkpoint's pretraining (UER: `[CLS] a`,
    # segments 1/2), even with another --vocab.
    return TextEncoder(path, cfg.max_seq_length, lowercase=lowercase,
                       text_pair=train.is_pair,
                       input_format=info.input_format if info else "bert",
                       kept_ids=None if cfg.vocab or not info
                       else info.kept_ids)
  except (ValueError, OSError) as e:
    raise ConfigError(f"--vocab: {_first_line(e)}") from None


def finish_architecture(arch, encoder, num_classes, cfg, info=None):
  """`arch` with the vocabulary size (the checkpoint's rows, or the pruned
  or learned vocabulary's) and the number of classes."""
  arch = dict(arch, num_classes=num_classes)
  if info and encoder.kept_ids is None:
    if encoder.vocabulary_size > arch["vocabulary_size"]:
      raise ConfigError(
          f"the tokenizer has {encoder.vocabulary_size} ids but "
          f"{cfg.init_checkpoint} only {arch['vocabulary_size']} embedding "
          "rows")
  else:
    arch["vocabulary_size"] = encoder.vocabulary_size
  return arch


def build_model(cfg, arch, info=None, kept_ids=None):
  """A built FastBertClassifier of `arch` (create it under the strategy's
  scope), its backbone restored from --init_checkpoint (only the rows of
  `kept_ids` when pruning now)."""
  try:
    model = FastBertClassifier.from_architecture(**arch)
  except (TypeError, ValueError) as e:
    raise ConfigError(f"the architecture cannot be built: {e}") from None
  model.build()
  if info:
    from fastbert_tf import checkpoints  # pylint: disable=g-import-not-at-top
    try:
      report = checkpoints.restore_backbone(
          model.backbone, cfg.init_checkpoint, kept_ids=kept_ids)
    except (OSError, ValueError) as e:
      if isinstance(e, ConfigError) or hasattr(e, "__fastbert_user__"):
        raise
      raise ConfigError(f"--init_checkpoint={cfg.init_checkpoint}: cannot "
                        f"read its weights ({_first_line(e)})") from None
    logging.info("Initialised the backbone from %s (%s): %s",
                 cfg.init_checkpoint, info.format, report.summary())
  return model


def _first_line(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__
