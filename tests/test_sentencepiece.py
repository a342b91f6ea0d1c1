"""SentencePiece in the graph: the same ids as python `sentencepiece`, XLM-R
framing, pad id 1 with the mask from lengths, longest-first truncation, the
text prefix, pruning, saving; and the three ways a model proto is built
(E5S1 pieces + normalisation table, fairseq-offset files, tokenizer.json)."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf.data import sentencepiece_model
from fastbert_tf.data import tokenizer as tokenizer_lib
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.testing import sentencepiece_models as models

spm = pytest.importorskip("sentencepiece")

# E5S1 order: <s> 0, <pad> 1, </s> 2, <unk> 3.
XLMR_IDS = dict(bos=0, pad=1, eos=2, unk=3)
# A per-code-point table like the E5S1 file's (XLM-R's nmt_nfkc, flattened).
NORMALIZATION = {"Ａ": "A", "！": "!", "，": ",", "ﬁ": "fi", "\u00a0": " ",
                 "①": "1", "－": "-"}


@pytest.fixture(scope="module")
def proto():
  """An E5S1-style proto: trained pieces + our compiled normaliser."""
  trained = models.train(XLMR_IDS, user_defined=("<mask>",))
  pieces, scores = models.pieces_and_scores(trained)
  return sentencepiece_model.build_model_proto(
      pieces, scores, XLMR_IDS, normalization_rules=NORMALIZATION,
      user_defined=[pieces.index("<mask>")])


def _python_ids(proto, text):
  return spm.SentencePieceProcessor(model_proto=proto).encode(text)


def _encode(encoder, a, b=None):
  out = encoder(tf.constant(a), None if b is None else tf.constant(b))
  return {k: v.numpy() for k, v in out.items()}


def test_in_graph_ids_equal_python_sentencepiece(proto):
  encoder = SentencePieceEncoder(proto, 512)
  out = _encode(encoder, list(models.PROBES))
  for row, text in enumerate(models.PROBES):
    want = [0] + _python_ids(proto, text) + [2]
    length = int(out["padding_mask"][row].sum())
    assert out["token_ids"][row, :length].tolist() == want, text
    # Padding is id 1 (<pad>); the mask comes from lengths, not ids != 0.
    assert (out["token_ids"][row, length:] == 1).all()
  assert (out["segment_ids"] == 0).all()


def test_normaliser_applies_the_table_and_nfkc_composition(proto):
  normalizer = spm.SentencePieceNormalizer(model_proto=proto)
  assert normalizer.normalize("Ａ！ﬁ①") == "▁A!fi1"
  # Decomposed é composes, as sentencepiece's NFKC rules do.
  assert normalizer.normalize("cafe\u0301") == normalizer.normalize("café")


def test_pairs_are_framed_xlmr_style_and_truncated_longest_first(proto):
  encoder = SentencePieceEncoder(proto, 12, text_pair=True)
  a, b = "the quick brown fox " * 3, "这本书非常好看"
  out = _encode(encoder, [a], [b])
  ids = out["token_ids"][0].tolist()
  pieces_a, pieces_b = _python_ids(proto, a), _python_ids(proto, b)
  budget = 12 - 4  # <s> a </s></s> b </s>
  keep_b = min(len(pieces_b), budget // 2)
  keep_a = budget - keep_b
  assert ids == ([0] + pieces_a[:keep_a] + [2, 2] + pieces_b[:keep_b] + [2])
  assert len(ids) == 12 and (out["segment_ids"] == 0).all()


def test_text_prefix_is_prepended_to_every_text(proto):
  encoder = SentencePieceEncoder(proto, 64, text_pair=True,
                                 text_prefix="query: ")
  prefix = _python_ids(proto, "query: ")
  out = _encode(encoder, ["café"], ["hello world"])
  want = ([0] + prefix + _python_ids(proto, "café") + [2, 2] + prefix +
          _python_ids(proto, "hello world") + [2])
  assert out["token_ids"][0, :len(want)].tolist() == want
  lengths = encoder.full_lengths(tf.constant(["café"]),
                                 tf.constant(["hello world"])).numpy()
  assert lengths.tolist() == [len(want)]


def test_pruned_encoder_maps_unseen_pieces_to_unk(proto):
  encoder = SentencePieceEncoder(proto, 64)
  kept = encoder.used_ids(["the book", "hello"])
  pruned = encoder.replace(kept_ids=kept)
  assert pruned.vocabulary_size == len(kept) < encoder.vocabulary_size
  full = _encode(encoder, ["the book 这本书"])["token_ids"][0]
  small = _encode(pruned, ["the book 这本书"])["token_ids"][0]
  rows = {int(t): r for r, t in enumerate(kept)}
  unk_row = rows[3]
  assert small.tolist() == [rows.get(int(t), unk_row) for t in full]
  assert unk_row in small.tolist()  # the CJK pieces were not kept
  with pytest.raises(ValueError, match="special and text-prefix ids"):
    encoder.replace(kept_ids=[5, 6])


def test_encoder_round_trips_through_a_model_directory(proto, tmp_path):
  encoder = SentencePieceEncoder(proto, 40, text_pair=True,
                                 text_prefix="passage: ")
  encoder = encoder.replace(kept_ids=encoder.used_ids(["a b", "这本书"]))
  encoder.save(str(tmp_path))
  loaded = tokenizer_lib.load_encoder(str(tmp_path))
  assert isinstance(loaded, SentencePieceEncoder)
  assert loaded.text_prefix == "passage: " and loaded.text_pair
  np.testing.assert_array_equal(loaded.kept_ids, encoder.kept_ids)
  a, b = ["a b 这本书 zzz"], ["好看"]
  for key, value in _encode(encoder, a, b).items():
    np.testing.assert_array_equal(_encode(loaded, a, b)[key], value)


def test_fairseq_offset_file_is_reordered_to_model_ids():
  # XLM-R's sentencepiece.bpe.model: <unk> 0, <s> 1, </s> 2; fairseq (and
  # the embedding rows) shift every piece by one and add <pad> 1, <mask>.
  original = models.train(dict(unk=0, bos=1, eos=2, pad=-1))
  proto = sentencepiece_model.from_fairseq_model(original)
  encoder = SentencePieceEncoder(proto, 512)
  processor = spm.SentencePieceProcessor(model_proto=original)
  out = _encode(encoder, list(models.PROBES))
  for row, text in enumerate(models.PROBES):
    fairseq = [3 if i == 0 else i + 1 for i in processor.encode(text)]
    length = int(out["padding_mask"][row].sum())
    assert out["token_ids"][row, :length].tolist() == [0] + fairseq + [2]
  assert encoder.tokenizer_vocabulary_size == processor.get_piece_size() + 2
  with pytest.raises(ValueError, match="fairseq"):
    sentencepiece_model.from_fairseq_model(models.train(XLMR_IDS))


def test_unigram_tokenizer_json_gives_the_tokenizers_librarys_ids(proto):
  tokenizers = pytest.importorskip("tokenizers")
  pieces, scores = models.pieces_and_scores(proto)
  from sentencepiece import sentencepiece_model_pb2  # pylint: disable=g-import-not-at-top
  parsed = sentencepiece_model_pb2.ModelProto()
  parsed.ParseFromString(proto)
  hf = tokenizers.Tokenizer(tokenizers.models.Unigram(
      list(zip(pieces, scores)), unk_id=3))
  hf.normalizer = tokenizers.normalizers.Sequence([
      tokenizers.normalizers.Precompiled(
          parsed.normalizer_spec.precompiled_charsmap),
      tokenizers.normalizers.Replace(tokenizers.Regex(" {2,}"), " ")])
  hf.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
  import json  # pylint: disable=g-import-not-at-top
  config = json.loads(hf.to_str())
  rebuilt = sentencepiece_model.from_unigram_tokenizer_json(config)
  encoder = SentencePieceEncoder(rebuilt, 512)
  # Trailing spaces aside: tokenizers' Metaspace keeps a final "▁" that
  # SentencePiece (and so the model's own training) drops.
  texts = [t.strip() for t in models.PROBES if t.strip()]
  out = _encode(encoder, texts)
  for row, text in enumerate(texts):
    length = int(out["padding_mask"][row].sum())
    assert out["token_ids"][row, 1:length - 1].tolist() == (
        hf.encode(text).ids), text


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
