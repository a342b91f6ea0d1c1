"""Encoder: raw text -> model inputs, the interface both tokenizers share.

Subclasses: `TextEncoder` (WordPiece, data.wordpiece_encoder) and
`SentencePieceEncoder` (data.sentencepiece_encoder); both have TFLite
kernels, so the SavedModel's text signature and the raw-text TFLite model
run the same ops. Import them from data.tokenizer.

Either encoder pads to the longest sample of the batch, truncates to
`max_seq_length` (pairs longest-first) and frames the pieces as its
`input_format` says (`packing.FRAMINGS`: bert, uer, xlmr).

Vocabulary pruning: an encoder built with `kept_ids` (the tokenizer ids a
corpus uses, in model-row order) maps every tokenizer id to its model row
after tokenizing, and every id it did not keep to the row of the unknown
token; the model's embedding table then has `len(kept_ids)` rows, and the
text signature still answers any text.

The text rule (the one definition of an empty text, for training,
evaluation, predict, the Predictor, the SavedModel and the server): a text
is empty when, after the tokenizer's own normalisation, it yields no token
besides the framing and the text prefix (`Encoder.content_lengths` == 0,
`Encoder.empty_texts`). Blank text is empty, and so is text of only
zero-width, control, bidi or (lower-casing WordPiece) combining characters:
the model would answer it from [CLS] [SEP] alone.
"""

import json
import os

import numpy as np
import tensorflow as tf

from fastbert_tf.data import packing

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
INPUT_FORMATS = packing.INPUT_FORMATS
TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
SENTENCEPIECE_FILE = "sentencepiece.model"
KEPT_IDS_FILE = "kept_token_ids.npy"


class Encoder(tf.Module):
  """Raw text -> token_ids / segment_ids / padding_mask (int32 [batch, seq]).

  Subclasses provide the tokenizer (`_pieces`), its size and its special
  ids; this class truncates, frames, pads and (when pruned) remaps.

  Attributes:
    max_seq_length: int, longest output including special tokens.
    text_pair: bool, whether the model takes sentence pairs (exports then
      ask for `text_b`).
    input_format: a packing.FRAMINGS key.
    kept_ids: int32 numpy [rows] tokenizer ids in model-row order, or None.
  """

  def __init__(self, max_seq_length, text_pair, input_format, name=None):
    super().__init__(name=name)
    self.input_format = packing.check_input_format(input_format)
    self._framing = packing.FRAMINGS[input_format]
    least = self._framing.specials(pair=bool(text_pair)) + 1
    if max_seq_length < least:
      raise ValueError(f"max_seq_length must be >= {least} (the special "
                       f"tokens and one more), got {max_seq_length}")
    self.max_seq_length = int(max_seq_length)
    self.text_pair = bool(text_pair)
    self.kept_ids = None
    self._id_map = None  # numpy int32 [tokenizer ids] -> model row

  # -- what subclasses provide ---------------------------------------------
  @property
  def tokenizer_vocabulary_size(self):
    """Number of ids the tokenizer itself can emit."""
    raise NotImplementedError

  def tokenizer_special_ids(self):
    """{"start", "end", "pad", "unk": tokenizer id}."""
    raise NotImplementedError

  def _pieces(self, texts):
    """string [batch] -> int32 RaggedTensor [batch, None] tokenizer ids,
    without the text prefix."""
    raise NotImplementedError

  def tokenizer_prefix_ids(self):
    """Tokenizer ids put before every text (none by default)."""
    return []

  def settings(self):
    """The tokenizer.json fields (besides `type`) that rebuild this encoder
    together with its vocabulary file."""
    raise NotImplementedError

  def _write_vocabulary(self, model_dir):
    raise NotImplementedError

  # -- shared ---------------------------------------------------------------
  @property
  def vocabulary_size(self):
    """Rows of the model's token embedding this encoder's ids index."""
    if self.kept_ids is not None:
      return len(self.kept_ids)
    return self.tokenizer_vocabulary_size

  def _set_kept_ids(self, kept_ids):
    kept = np.asarray(kept_ids, np.int64)
    size = self.tokenizer_vocabulary_size
    special = self.tokenizer_special_ids()
    problems = []
    if kept.ndim != 1 or len(np.unique(kept)) != len(kept):
      problems.append("must be a 1-D list of distinct ids")
    elif kept.size and (kept.min() < 0 or kept.max() >= size):
      problems.append(f"ids must lie in [0, {size})")
    needed = set(special.values()) | set(self.tokenizer_prefix_ids())
    missing = sorted(needed - set(kept.tolist()))
    if missing:
      problems.append(f"the special and text-prefix ids {missing} are "
                      "missing")
    if problems:
      raise ValueError("kept_ids: " + "; ".join(problems))
    id_map = np.full(size, int(np.flatnonzero(kept == special["unk"])[0]),
                     np.int32)
    id_map[kept] = np.arange(len(kept), dtype=np.int32)
    self.kept_ids = kept.astype(np.int32)
    self._id_map = id_map

  def special_ids(self):
    """{"start", "end", "pad", "unk": model id} (after pruning)."""
    ids = self.tokenizer_special_ids()
    if self.kept_ids is None:
      return ids
    rows = {int(t): r for r, t in enumerate(self.kept_ids)}
    return {k: rows[v] for k, v in ids.items()}

  def tokenizer_ids(self, texts):
    """string [batch] -> int32 RaggedTensor [batch, None] tokenizer ids
    (before pruning's remap) without the prefix, special tokens or
    truncation: what pruning counts."""
    return self._pieces(texts)

  def _model_pieces(self, texts):
    ragged = self._pieces(texts)
    if self._id_map is None:
      return ragged
    return ragged.with_flat_values(
        tf.gather(tf.constant(self._id_map), ragged.flat_values))

  def _model_prefix(self):
    prefix = self.tokenizer_prefix_ids()
    if self._id_map is not None:
      prefix = [int(self._id_map[i]) for i in prefix]
    return prefix

  def __call__(self, text_a, text_b=None):
    """Encodes a batch.

    Args:
      text_a: string [batch].
      text_b: optional string [batch], the second segment of pair tasks.

    Returns:
      dict of int32 [batch, seq] `token_ids`, `segment_ids`, `padding_mask`,
      seq = min(longest sample, max_seq_length).
    """
    cap = self.max_seq_length
    a, len_a = self._dense_pieces(text_a, cap)
    if text_b is None:
      len_a = tf.minimum(len_a, cap - self._framing.specials(pair=False))
      b = len_b = None
    else:
      b, len_b = self._dense_pieces(text_b, cap)
      len_a, len_b = packing.truncate_pair(
          len_a, len_b, cap - self._framing.specials(pair=True))
    return packing.pack(a, len_a, b, len_b, self._framing, self.special_ids())

  def content_lengths(self, texts):
    """The text rule's measure: tokens each text yields besides the framing
    and the text prefix, after the tokenizer's normalisation. In-graph (the
    SavedModel's text signature and its `content_lengths` function).

    Args:
      texts: string [batch], UTF-8.

    Returns:
      int32 [batch]; 0 means the text is empty.
    """
    return tf.cast(self._pieces(texts).row_lengths(), tf.int32)

  def empty_texts(self, texts, batch_size=1024):
    """The text rule, for Python callers: which texts are empty.

    Args:
      texts: sequence of n str (or UTF-8 bytes).
      batch_size: int, texts tokenized at a time.

    Returns:
      bool numpy [n], True where content_lengths is 0.
    """
    texts = list(texts)
    out = np.zeros(len(texts), bool)
    for start in range(0, len(texts), batch_size):
      chunk = tf.constant(texts[start:start + batch_size], tf.string)
      out[start:start + len(texts[start:start + batch_size])] = (
          self.content_lengths(chunk).numpy() == 0)
    return out

  def full_lengths(self, text_a, text_b=None):
    """Tokens each sample would need without truncation, specials included.

    Args:
      text_a: string [batch]; text_b: optional string [batch].

    Returns:
      int32 [batch]; a sample is truncated iff its value > max_seq_length.
    """
    texts = [t for t in (text_a, text_b) if t is not None]
    lengths = [tf.cast(self._pieces(t).row_lengths(), tf.int32) for t in texts]
    extra = self._framing.specials(text_b is not None) + len(texts) * len(
        self.tokenizer_prefix_ids())
    return tf.add_n(lengths) + extra

  def _dense_pieces(self, texts, cap):
    """string [batch] -> (int32 [batch, cap] model ids, the text prefix
    first, int32 [batch] lengths)."""
    ragged = self._model_pieces(texts)
    lengths = tf.cast(ragged.row_lengths(), tf.int32)
    batch = tf.shape(texts)[0]
    dense = ragged.to_tensor(default_value=0, shape=tf.stack([batch, cap]))
    prefix = self._model_prefix()
    if prefix:
      # Dense, not a ragged concat, which TFLite cannot run (trap 4).
      rows = tf.tile(tf.constant([prefix], tf.int32), tf.stack([batch, 1]))
      dense = tf.concat([rows, dense], axis=1)[:, :cap]
      lengths += len(prefix)
    return dense, lengths

  def save(self, model_dir):
    """Writes tokenizer.json, the vocabulary file and (pruned) the kept ids."""
    self._write_vocabulary(model_dir)
    settings = dict(self.settings(), type=self.TYPE,
                    max_seq_length=self.max_seq_length,
                    text_pair=self.text_pair, input_format=self.input_format,
                    pruned=self.kept_ids is not None)
    with tf.io.gfile.GFile(os.path.join(model_dir, TOKENIZER_FILE), "w") as f:
      f.write(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    if self.kept_ids is not None:
      with tf.io.gfile.GFile(os.path.join(model_dir, KEPT_IDS_FILE), "wb") as f:
        np.save(f, self.kept_ids)

  def replace(self, **changes):
    """A new encoder of this kind with some constructor arguments changed,
    e.g. `replace(kept_ids=ids)` or `replace(max_seq_length=64)`."""
    kwargs = dict(self.settings(), max_seq_length=self.max_seq_length,
                  text_pair=self.text_pair, input_format=self.input_format,
                  kept_ids=self.kept_ids)
    kwargs.update(changes)
    return type(self)(self._vocabulary, **kwargs)

  def used_ids(self, texts, batch_size=1024):
    """Tokenizer ids a corpus needs: every id its texts tokenize to, plus
    the special and text-prefix ids, sorted (the `kept_ids` of pruning).

    Args:
      texts: iterable of str (both halves of pairs, for pair tasks).
      batch_size: int, texts tokenized at a time.

    Returns:
      int32 numpy [n].
    """
    used = set(self.tokenizer_special_ids().values())
    used.update(self.tokenizer_prefix_ids())
    texts = list(texts)
    for start in range(0, len(texts), batch_size):
      ids = self.tokenizer_ids(tf.constant(texts[start:start + batch_size]))
      used.update(np.unique(ids.flat_values.numpy()).tolist())
    return np.array(sorted(used), np.int32)

  def files(self):
    """The files `save` writes, by name."""
    names = [TOKENIZER_FILE, self.VOCABULARY_FILE]
    return names + ([KEPT_IDS_FILE] if self.kept_ids is not None else [])
