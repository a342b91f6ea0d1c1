"""Tiny SentencePiece models trained on the spot, for tokenizer and
checkpoint-reader tests (python `sentencepiece`, no files shipped)."""

import io

# Mixed scripts, so pieces cover Latin words, accents, CJK and emoji.
CORPUS = tuple(
    f"{w} {v} 这本书{c}好看 {e}" for w, v, c, e in zip(
        ["the book", "a good day", "quick brown fox", "café crème",
         "naïve résumé", "hello world", "machine learning", "deep networks"]
        * 8,
        ["is great", "was bad", "jumps over", "très bien", "über alles",
         "again and again", "for text", "with exits"] * 8,
        ["非常", "很", "不", "真的", "太", "还", "挺", "最"] * 8,
        ["😀", "🎉", "!", "?", "。", "，", "！", "…"] * 8))

# Strings every tokenizer test runs: CJK, full-width punctuation, composed
# and decomposed accents, emoji, odd spaces, long and empty text.
PROBES = ("这本书非常好看", "Ｆｕｌｌ－ｗｉｄｔｈ，标点！", "café crème",
          "cafe\u0301 cre\u0300me", "😀🎉 hello", "  spaced   out  ", "",
          "the quick brown fox " * 30, "ﬁne ① x\u00a0y", "质量太差了，不推荐。")


def train(special, vocab_size=120, user_defined=()):
  """A unigram model whose special ids are `special`.

  Args:
    special: {"unk", "bos", "eos", "pad": id (-1 = none)}.
    vocab_size: int.
    user_defined: pieces to add (e.g. ("<mask>",)).

  Returns:
    bytes, the serialized ModelProto.
  """
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(CORPUS), model_writer=model,
      vocab_size=vocab_size, model_type="unigram", character_coverage=1.0,
      unk_id=special["unk"], bos_id=special["bos"], eos_id=special["eos"],
      pad_id=special["pad"], user_defined_symbols=list(user_defined),
      normalization_rule_name="identity", hard_vocab_limit=False,
      minloglevel=2)
  return model.getvalue()


def pieces_and_scores(model_proto):
  """([piece], [score]) of a serialized ModelProto, in id order."""
  from sentencepiece import sentencepiece_model_pb2  # pylint: disable=g-import-not-at-top
  proto = sentencepiece_model_pb2.ModelProto()
  proto.ParseFromString(model_proto)
  return ([p.piece for p in proto.pieces], [p.score for p in proto.pieces])
