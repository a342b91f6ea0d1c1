"""TextEncoder: WordPiece over a BERT vocab.txt, with
`tensorflow_text.FastBertTokenizer` (it splits CJK characters like BERT's
basic tokenizer, and has a TFLite kernel)."""

import os

import tensorflow as tf
import tensorflow_text as tf_text

from fastbert_tf.data.encoder import Encoder
from fastbert_tf.data.encoder import SPECIAL_TOKENS
from fastbert_tf.data.encoder import VOCAB_FILE


def read_vocab(path):
  """Reads a BERT vocab.txt (one token per line) into a list of str."""
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      tokens = [line.rstrip("\n").rstrip("\r") for line in f]
  except tf.errors.NotFoundError:
    raise FileNotFoundError(f"{path}: no such vocabulary file") from None
  while tokens and not tokens[-1]:
    tokens.pop()
  missing = [t for t in SPECIAL_TOKENS if t not in tokens]
  if missing:
    raise ValueError(f"{path}: vocab lacks the special tokens {missing}")
  return tokens


class TextEncoder(Encoder):
  """WordPiece (BERT vocab.txt) encoder.

  Args:
    vocab: list of str (vocab.txt order) or a path to vocab.txt.
    max_seq_length: int, longest output including special tokens.
    lowercase: bool, lower-case and strip accents (uncased English BERT and
      Google's Chinese BERT both use True).
    text_pair: bool, whether the model takes sentence pairs.
    input_format: "bert" or "uer" (packing.FRAMINGS).
    kept_ids: optional tokenizer ids to keep (vocabulary pruning).

  Example:

  >>> encoder = TextEncoder(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], 8)
  >>> encoder(tf.constant(["a a"]))["token_ids"].numpy().tolist()
  [[2, 4, 4, 3]]
  """

  TYPE = "wordpiece"
  VOCABULARY_FILE = VOCAB_FILE

  def __init__(self, vocab, max_seq_length, lowercase=True, text_pair=False,
               input_format="bert", kept_ids=None, name=None):
    if isinstance(vocab, str):
      vocab = read_vocab(vocab)
    self.vocab = list(vocab)
    self.lowercase = bool(lowercase)
    if input_format not in ("bert", "uer"):
      raise ValueError(f"input_format must be 'bert' or 'uer' for a "
                       f"WordPiece vocabulary, got {input_format!r}")
    super().__init__(max_seq_length, text_pair, input_format, name=name)
    self._tokenizer = tf_text.FastBertTokenizer(
        vocab=self.vocab, token_out_type=tf.int32,
        lower_case_nfd_strip_accents=self.lowercase)
    if kept_ids is not None:
      self._set_kept_ids(kept_ids)

  @property
  def tokenizer_vocabulary_size(self):
    return len(self.vocab)

  def tokenizer_special_ids(self):
    pad, unk, cls, sep = (self.vocab.index(t) for t in SPECIAL_TOKENS)
    return dict(start=cls, end=sep, pad=pad, unk=unk)

  def _pieces(self, texts):
    ragged = self._tokenizer.tokenize(texts)
    return ragged.merge_dims(-2, -1) if ragged.ragged_rank > 1 else ragged

  def settings(self):
    return dict(lowercase=self.lowercase)

  @property
  def _vocabulary(self):
    return self.vocab

  def _write_vocabulary(self, model_dir):
    with tf.io.gfile.GFile(os.path.join(model_dir, VOCAB_FILE), "w") as f:
      f.write("\n".join(self.vocab) + "\n")
