"""Learning a WordPiece vocabulary when no pretrained one is given."""

import keras_hub
import tensorflow as tf

RESERVED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def learn_vocab(texts, vocabulary_size, path, lowercase=True):
  """Learns a WordPiece vocab.txt from training text with keras-hub.

  CJK characters are split into single characters, as BERT does, so on
  Chinese text the vocabulary is the most frequent characters.

  Args:
    texts: sequence of str.
    vocabulary_size: int, upper bound on the number of tokens.
    path: where to write vocab.txt (one token per line, [PAD] first).
    lowercase: bool, lower-case and strip accents before learning.

  Returns:
    list of str, the vocabulary in file order.
  """
  data = tf.data.Dataset.from_tensor_slices(list(texts)).batch(1024)
  vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
      data, vocabulary_size, lowercase=lowercase, strip_accents=lowercase,
      reserved_tokens=RESERVED_TOKENS)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write("\n".join(vocab) + "\n")
  return list(vocab)
