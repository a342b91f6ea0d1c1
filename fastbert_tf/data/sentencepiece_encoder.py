"""SentencePieceEncoder: `tensorflow_text.FastSentencepieceTokenizer` over a
serialized SentencePiece ModelProto (XLM-R / multilingual-e5), cased, with
an optional text prefix such as e5's `query: `.

tf-text's older `SentencepieceTokenizer` has no TFLite kernel, and on 3,000
random strings it disagreed with python `sentencepiece` 22 times, the fast
one never (`bench/sentencepiece_agreement.py`).
"""

import os

import tensorflow as tf
import tensorflow_text as tf_text

from fastbert_tf.data.encoder import Encoder
from fastbert_tf.data.encoder import SENTENCEPIECE_FILE


class SentencePieceEncoder(Encoder):
  """SentencePiece (unigram or BPE ModelProto) encoder, XLM-R framing.

  The model's pieces must be in model-id order: `<s>`, `<pad>`, `</s>`,
  `<unk>` are looked up by the ModelProto's trainer_spec (bos/pad/eos/unk
  ids), and fairseq-offset files are re-ordered by the checkpoint readers.

  Args:
    model_proto: bytes, a serialized sentencepiece ModelProto.
    max_seq_length: int, longest output including special tokens.
    text_pair: bool.
    input_format: "xlmr" (`<s> a </s></s> b </s>`, segment ids 0).
    text_prefix: str put before every text (and text_b), e.g. "query: " for
      multilingual-e5. It is tokenized once and its pieces prepended, so
      no string op enters the graph (TFLite has none); that equals
      tokenizing the joined string except where two segmentations tie in
      score (10 of 12,000 dataset texts, runs of one repeated character).
    kept_ids: optional tokenizer ids to keep (vocabulary pruning).

  Example:

  >>> encoder = SentencePieceEncoder(open("sentencepiece.model", "rb").read(),
  ...                                128, text_prefix="query: ")
  >>> encoder(tf.constant(["这本书非常好看"]))["token_ids"]
  """

  TYPE = "sentencepiece"
  VOCABULARY_FILE = SENTENCEPIECE_FILE

  def __init__(self, model_proto, max_seq_length, text_pair=False,
               input_format="xlmr", text_prefix="", kept_ids=None,
               name=None):
    from sentencepiece import sentencepiece_model_pb2  # pylint: disable=g-import-not-at-top
    self.model_proto = bytes(model_proto)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(self.model_proto)
    spec = proto.trainer_spec
    self._special = dict(start=spec.bos_id, end=spec.eos_id, pad=spec.pad_id,
                         unk=spec.unk_id)
    bad = {k: v for k, v in self._special.items()
           if not 0 <= v < len(proto.pieces)}
    if bad:
      raise ValueError(f"the SentencePiece model has no ids for {bad} "
                       "(trainer_spec bos/eos/pad/unk)")
    self._size = len(proto.pieces)
    self.text_prefix = str(text_prefix)
    self.lowercase = False
    super().__init__(max_seq_length, text_pair, input_format, name=name)
    self._tokenizer = tf_text.FastSentencepieceTokenizer(self.model_proto)
    self._prefix_ids = [int(i) for i in self._tokenizer.tokenize(
        [self.text_prefix]).to_list()[0]] if self.text_prefix else []
    if kept_ids is not None:
      self._set_kept_ids(kept_ids)

  @property
  def tokenizer_vocabulary_size(self):
    return self._size

  def tokenizer_special_ids(self):
    return dict(self._special)

  def tokenizer_prefix_ids(self):
    return list(self._prefix_ids)

  def _pieces(self, texts):
    return tf.cast(self._tokenizer.tokenize(texts), tf.int32)

  def settings(self):
    return dict(text_prefix=self.text_prefix)

  @property
  def _vocabulary(self):
    return self.model_proto

  def _write_vocabulary(self, model_dir):
    path = os.path.join(model_dir, SENTENCEPIECE_FILE)
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(self.model_proto)
