"""In-graph BERT tokenization with tensorflow-text, packed with dense ops.

`TextEncoder` turns raw strings into the model's int32 inputs, padded to the
longest sample of the batch and truncated to `max_seq_length` (pairs
longest-first), padding mask 1 on real tokens. Two input formats:
  "bert" (Google/HF BERT): `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`,
    segment ids 0 then 1 (0 on padding too);
  "uer" (UER-py, the FastBERT authors' checkpoints, PAPER.md §3): `[CLS] a`
    with no trailing [SEP], or `[CLS] a [SEP] b [SEP]`, segment ids 1 then 2
    and 0 on padding, for their 3-row segment table.

Word pieces come from `tensorflow_text.FastBertTokenizer` (it splits CJK
characters like BERT's basic tokenizer and has TFLite kernels). Special
tokens are added and truncation applied with dense ops (gather / where)
rather than ragged slicing, which would emit RaggedRange, an op TFLite cannot
resolve (TF_NOTES trap 4).
"""

import tensorflow as tf
import tensorflow_text as tf_text

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
INPUT_FORMATS = ("bert", "uer")


def read_vocab(path):
  """Reads a BERT vocab.txt (one token per line) into a list of str."""
  with tf.io.gfile.GFile(path, "r") as f:
    tokens = [line.rstrip("\n").rstrip("\r") for line in f]
  while tokens and not tokens[-1]:
    tokens.pop()
  missing = [t for t in SPECIAL_TOKENS if t not in tokens]
  if missing:
    raise ValueError(f"{path}: vocab lacks the special tokens {missing}")
  return tokens


class TextEncoder(tf.Module):
  """Raw text -> token_ids / segment_ids / padding_mask (int32 [batch, seq]).

  Args:
    vocab: list of str (vocab.txt order) or a path to vocab.txt.
    max_seq_length: int, longest output including special tokens.
    lowercase: bool, lower-case and strip accents (uncased English BERT and
      Google's Chinese BERT both use True).
    text_pair: bool, whether the model was trained on sentence pairs; saved
      with the model so exports know to ask for `text_b`.
    input_format: "bert" or "uer" (see the module docstring); UER
      checkpoints set "uer".
  """

  def __init__(self, vocab, max_seq_length, lowercase=True, text_pair=False,
               input_format="bert", name=None):
    super().__init__(name=name)
    if isinstance(vocab, str):
      vocab = read_vocab(vocab)
    if max_seq_length < 3:
      raise ValueError(f"max_seq_length must be >= 3, got {max_seq_length}")
    if input_format not in INPUT_FORMATS:
      raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got "
                       f"{input_format!r}")
    self.input_format = input_format
    self.vocab = list(vocab)
    self.max_seq_length = int(max_seq_length)
    self.lowercase = bool(lowercase)
    self.text_pair = bool(text_pair)
    self._tokenizer = tf_text.FastBertTokenizer(
        vocab=self.vocab, token_out_type=tf.int32,
        lower_case_nfd_strip_accents=self.lowercase)
    self.pad_id, self.unk_id, self.cls_id, self.sep_id = (
        self.vocab.index(t) for t in SPECIAL_TOKENS)

  @property
  def vocabulary_size(self):
    return len(self.vocab)

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
    a, len_a = self._word_pieces(text_a, cap)
    if text_b is None:
      len_a = tf.minimum(len_a, cap - self._single_specials)
      len_b = tf.zeros_like(len_a)
      b = tf.zeros_like(a)
    else:
      b, len_b = self._word_pieces(text_b, cap)
      len_a, len_b = _truncate_pair(len_a, len_b, cap - 3)
    return self._pack(a, len_a, b, len_b, has_b=text_b is not None)

  def full_lengths(self, text_a, text_b=None):
    """Tokens each sample would need without truncation, specials included.

    Args:
      text_a: string [batch]; text_b: optional string [batch].

    Returns:
      int32 [batch]; a sample is truncated iff its value > max_seq_length.
    """
    lengths = [tf.cast(self._tokenizer.tokenize(t).merge_dims(1, -1)
                       .row_lengths(), tf.int32)
               for t in (text_a, text_b) if t is not None]
    return tf.add_n(lengths) + (3 if text_b is not None else
                                self._single_specials)

  @property
  def _single_specials(self):
    """[CLS] [SEP] around a single text; UER drops the [SEP]."""
    return 1 if self.input_format == "uer" else 2

  def _word_pieces(self, texts, cap):
    """string [batch] -> (int32 [batch, cap] ids padded with 0, int32 [batch])."""
    ragged = self._tokenizer.tokenize(texts)
    ragged = ragged.merge_dims(-2, -1) if ragged.ragged_rank > 1 else ragged
    lengths = tf.cast(ragged.row_lengths(), tf.int32)
    batch = tf.shape(texts)[0]
    dense = ragged.to_tensor(default_value=0, shape=tf.stack([batch, cap]))
    return dense, lengths

  def _pack(self, a, len_a, b, len_b, has_b):
    total = len_a + (len_b + 3 if has_b else self._single_specials)
    width = tf.reduce_max(tf.concat([total, [0]], axis=0))
    la, lb = len_a[:, tf.newaxis], len_b[:, tf.newaxis]
    # [batch, width] positions; gather with batch_dims needs the batch axis.
    pos = tf.range(width)[tf.newaxis, :] + tf.zeros_like(la)
    from_a = tf.gather(a, tf.clip_by_value(pos - 1, 0, self.max_seq_length - 1),
                       batch_dims=1)
    from_b = tf.gather(b, tf.clip_by_value(pos - la - 2, 0,
                                           self.max_seq_length - 1),
                       batch_dims=1)
    in_a = (pos >= 1) & (pos <= la)
    in_b = (pos >= la + 2) & (pos < la + 2 + lb)
    # UER's single text has no [SEP]: at la + 1 it lies past `total` and
    # becomes padding below.
    is_sep = tf.equal(pos, la + 1)
    if has_b:
      is_sep |= tf.equal(pos, la + lb + 2)
    real = pos < total[:, tf.newaxis]
    ids = tf.where(in_a, from_a, tf.where(in_b, from_b, self.pad_id))
    ids = tf.where(is_sep, self.sep_id, ids)
    ids = tf.where(tf.equal(pos, 0), self.cls_id, ids)
    ids = tf.where(real, ids, self.pad_id)
    # tf.where, not a cast of the bool: the TFLite converter folds
    # `cast(bool) < 0` (Keras' negative-index check in the embedding) into a
    # bool zeros_like, which TFLite has no kernel for.
    first, second = (1, 2) if self.input_format == "uer" else (0, 1)
    segment = tf.where(pos >= la + 2, second, first) if has_b else (
        tf.fill(tf.shape(ids), first))
    segment = tf.where(real, segment, 0)
    return dict(token_ids=ids, segment_ids=segment,
                padding_mask=tf.cast(real, tf.int32))


def _truncate_pair(len_a, len_b, budget):
  """BERT's longest-first truncation of a pair, in closed form.

  BERT pops a token from the longer segment (from b on a tie) until the pair
  fits: the shorter one keeps all its tokens when it fits in half the budget,
  otherwise a gets ceil(budget / 2) and b floor(budget / 2).
  """
  half_up = budget - budget // 2
  new_a = tf.minimum(len_a, tf.maximum(budget - len_b, half_up))
  new_b = tf.minimum(len_b, budget - new_a)
  return new_a, new_b
