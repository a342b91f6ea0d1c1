"""Packing token pieces into model inputs with dense ops, for every framing.

A framing says which special tokens surround one text or a pair, and which
segment ids the two halves get:

  "bert" (Google/HF BERT): `[CLS] a [SEP]`, `[CLS] a [SEP] b [SEP]`;
    segment ids 0 then 1.
  "uer" (UER-py, the FastBERT authors' checkpoints, PAPER.md §3): `[CLS] a`
    with no trailing [SEP], `[CLS] a [SEP] b [SEP]`; segment ids 1 then 2,
    for their 3-row segment table.
  "xlmr" (XLM-R / multilingual-e5 SentencePiece models): `<s> a </s>`,
    `<s> a </s></s> b </s>`; every segment id 0.

Padding gets segment id 0 and the pad id; the padding mask comes from the
lengths, never from the ids (XLM-R's pad id is 1, and 0 is `<s>`).

Everything is gather / where on dense tensors: ragged slicing and concat
would emit RaggedRange, which TFLite cannot resolve (TF_NOTES trap 4).
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Framing:
  """Where special tokens go, by role name ("start", "sep", ...).

  Attributes:
    start: roles before text a.
    single_end: roles after text a when there is no text b.
    middle: roles between a and b.
    pair_end: roles after b.
    segments: (segment id of a and what follows it up to b, segment id of b
      and its end).
  """
  start: tuple
  single_end: tuple
  middle: tuple
  pair_end: tuple
  segments: tuple

  def specials(self, pair):
    """Number of special tokens a single text (pair=False) or a pair gets."""
    if pair:
      return len(self.start) + len(self.middle) + len(self.pair_end)
    return len(self.start) + len(self.single_end)


FRAMINGS = {
    "bert": Framing(("start",), ("end",), ("end",), ("end",), (0, 1)),
    "uer": Framing(("start",), (), ("end",), ("end",), (1, 2)),
    "xlmr": Framing(("start",), ("end",), ("end", "end"), ("end",), (0, 0)),
}
INPUT_FORMATS = tuple(FRAMINGS)


def check_input_format(input_format):
  if input_format not in FRAMINGS:
    raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got "
                     f"{input_format!r}")
  return input_format


def truncate_pair(len_a, len_b, budget):
  """BERT's longest-first truncation of a pair, in closed form.

  BERT pops a token from the longer segment (from b on a tie) until the pair
  fits: the shorter one keeps all its tokens when it fits in half the budget,
  otherwise a gets ceil(budget / 2) and b floor(budget / 2).

  Args:
    len_a, len_b: int32 [batch] piece counts.
    budget: int, pieces the pair may keep.

  Returns:
    (int32 [batch], int32 [batch]) the kept counts.
  """
  half_up = budget - budget // 2
  new_a = tf.minimum(len_a, tf.maximum(budget - len_b, half_up))
  new_b = tf.minimum(len_b, budget - new_a)
  return new_a, new_b


def pack(a, len_a, b, len_b, framing, ids):
  """Frames pieces with special tokens and pads to the longest sample.

  Args:
    a: int32 [batch, >= max len_a] pieces of text a (padded with anything).
    len_a: int32 [batch], pieces of a to keep (already truncated).
    b: int32 [batch, >= max len_b] pieces of text b, or None for single texts.
    len_b: int32 [batch], or None.
    framing: Framing.
    ids: {"start": int, "end": int, "pad": int} token ids of the roles.

  Returns:
    dict of int32 [batch, width] `token_ids`, `segment_ids`, `padding_mask`,
    width = the longest framed sample.
  """
  pair = b is not None
  ends = framing.middle if pair else framing.single_end
  if not pair:
    b, len_b = tf.zeros_like(a), tf.zeros_like(len_a)
  tail = framing.pair_end if pair else ()
  # The special tokens in order of appearance, so region k of the layout
  # reads specials[offset_k + position within the region].
  specials = tf.constant(
      [ids[r] for r in framing.start + ends + tail] or [ids["pad"]], tf.int32)
  n_start, n_mid = len(framing.start), len(ends)
  la, lb = len_a[:, tf.newaxis], len_b[:, tf.newaxis]
  total = n_start + len_a + n_mid + len_b + len(tail)
  width = tf.reduce_max(tf.concat([total, [0]], axis=0))
  # [batch, width] positions; gather with batch_dims needs the batch axis.
  pos = tf.range(width)[tf.newaxis, :] + tf.zeros_like(la)
  a_end = n_start + la
  b_start = a_end + n_mid
  b_end = b_start + lb
  clip = lambda index, size: tf.clip_by_value(index, 0, size - 1)
  from_a = tf.gather(a, clip(pos - n_start, tf.shape(a)[1]), batch_dims=1)
  from_b = tf.gather(b, clip(pos - b_start, tf.shape(b)[1]), batch_dims=1)
  n_specials = tf.shape(specials)[0]
  special_index = tf.where(
      pos < n_start, pos,
      tf.where(pos < b_start, n_start + pos - a_end,
               n_start + n_mid + pos - b_end))
  from_specials = tf.gather(specials, clip(special_index, n_specials))
  real = pos < total[:, tf.newaxis]
  token_ids = tf.where(
      (pos >= n_start) & (pos < a_end), from_a,
      tf.where((pos >= b_start) & (pos < b_end), from_b, from_specials))
  token_ids = tf.where(real, token_ids, ids["pad"])
  # tf.where, not a cast of the bool: the TFLite converter folds
  # `cast(bool) < 0` (Keras' negative-index check in the embedding) into a
  # bool zeros_like, which TFLite has no kernel for.
  first, second = framing.segments
  segment_ids = tf.where(pos >= b_start, second, first) if pair else (
      tf.fill(tf.shape(token_ids), first))
  segment_ids = tf.where(real, segment_ids, 0)
  return dict(token_ids=token_ids, segment_ids=segment_ids,
              padding_mask=tf.cast(real, tf.int32))
