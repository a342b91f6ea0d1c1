"""Tests for fastbert_tf.data.tokenizer."""

import sys

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.data.tokenizer import read_vocab

V = testing.TINY_VOCAB
ID = {t: i for i, t in enumerate(V)}
CLS, SEP, PAD, UNK = ID["[CLS]"], ID["[SEP]"], ID["[PAD]"], ID["[UNK]"]


def _encode(texts_a, texts_b=None, max_len=16, lowercase=True,
            input_format="bert"):
  encoder = TextEncoder(V, max_len, lowercase=lowercase,
                        input_format=input_format)
  out = encoder(tf.constant(texts_a),
                None if texts_b is None else tf.constant(texts_b))
  return {k: v.numpy().tolist() for k, v in out.items()}


def test_single_sentence_layout_and_per_batch_padding():
  out = _encode(["a b c", "d"])
  assert out["token_ids"] == [[CLS, ID["a"], ID["b"], ID["c"], SEP],
                              [CLS, ID["d"], SEP, PAD, PAD]]
  assert out["segment_ids"] == [[0] * 5, [0] * 5]
  assert out["padding_mask"] == [[1] * 5, [1, 1, 1, 0, 0]]


def test_pair_layout_and_segments():
  out = _encode(["a b"], ["c"])
  assert out["token_ids"] == [[CLS, ID["a"], ID["b"], SEP, ID["c"], SEP]]
  assert out["segment_ids"] == [[0, 0, 0, 0, 1, 1]]


def test_chinese_is_split_per_character_and_unknown_maps_to_unk():
  out = _encode(["好书很差"])
  assert out["token_ids"] == [[CLS, ID["好"], ID["书"], UNK, ID["差"], SEP]]


def test_lowercase_switch():
  assert _encode(["A"])["token_ids"] == [[CLS, ID["a"], SEP]]
  assert _encode(["A"], lowercase=False)["token_ids"] == [[CLS, UNK, SEP]]


def test_single_truncation_keeps_cls_and_sep():
  out = _encode(["a b c d e f g h"], max_len=5)
  assert out["token_ids"] == [[CLS, ID["a"], ID["b"], ID["c"], SEP]]


@pytest.mark.parametrize("len_a,len_b,want_a,want_b", [
    (2, 9, 2, 5),    # a fits in half: b gets the rest
    (9, 2, 5, 2),    # b fits in half: a gets the rest
    (9, 9, 4, 3),    # both long: a gets ceil(7/2), b floor(7/2)
    (1, 1, 1, 1),    # both fit
])
def test_pair_truncation_is_longest_first(len_a, len_b, want_a, want_b):
  out = _encode([" ".join("a" * len_a)], [" ".join("b" * len_b)], max_len=10)
  ids = out["token_ids"][0]
  assert ids.count(ID["a"]) == want_a and ids.count(ID["b"]) == want_b
  assert len(ids) <= 10 and ids.count(SEP) == 2


def test_matches_keras_hub_bert_tokenizer_and_packer():
  texts = ["the quick brown fox", "z", "abc def", "好 书"]
  ours = _encode(texts, max_len=8)
  tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=V, lowercase=True)
  packer = keras_hub.layers.StartEndPacker(
      sequence_length=8, start_value=CLS, end_value=SEP, pad_value=PAD)
  theirs = packer(tokenizer(tf.constant(texts))).numpy()
  width = len(ours["token_ids"][0])
  np.testing.assert_array_equal(np.array(ours["token_ids"]), theirs[:, :width])


def test_full_lengths_count_tokens_before_truncation():
  encoder = TextEncoder(V, 5)
  single = encoder.full_lengths(tf.constant(["a b c d e f", "a"])).numpy()
  assert single.tolist() == [8, 3]  # 6 + [CLS] [SEP]; 1 + 2
  pair = encoder.full_lengths(tf.constant(["a b"]), tf.constant(["c"])).numpy()
  assert pair.tolist() == [6]  # 2 + 1 + [CLS] [SEP] [SEP]


def test_empty_text_is_cls_sep():
  assert _encode([""])["token_ids"] == [[CLS, SEP]]


def test_uer_single_has_no_trailing_sep_and_segment_one():
  out = _encode(["a b c", "d", ""], input_format="uer")
  assert out["token_ids"] == [[CLS, ID["a"], ID["b"], ID["c"]],
                              [CLS, ID["d"], PAD, PAD],
                              [CLS, PAD, PAD, PAD]]
  assert out["segment_ids"] == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]
  assert out["padding_mask"] == [[1] * 4, [1, 1, 0, 0], [1, 0, 0, 0]]


def test_uer_pair_segments_one_two_and_padding_zero():
  out = _encode(["a b", "a"], ["c", "c d e"], input_format="uer")
  assert out["token_ids"] == [
      [CLS, ID["a"], ID["b"], SEP, ID["c"], SEP, PAD],
      [CLS, ID["a"], SEP, ID["c"], ID["d"], ID["e"], SEP]]
  assert out["segment_ids"] == [[1, 1, 1, 1, 2, 2, 0],
                                [1, 1, 1, 2, 2, 2, 2]]


def test_uer_truncation_keeps_cls_and_one_more_token():
  encoder = TextEncoder(V, 4, input_format="uer")
  out = encoder(tf.constant(["a b c d e f"]))
  assert out["token_ids"].numpy().tolist() == [[CLS, ID["a"], ID["b"],
                                                ID["c"]]]
  assert encoder.full_lengths(tf.constant(["a b c d e f"])).numpy() == [7]
  with pytest.raises(ValueError, match="input_format"):
    TextEncoder(V, 4, input_format="roberta")


def test_vocab_file_needs_special_tokens(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("[PAD]\n[UNK]\na\n")
  with pytest.raises(ValueError, match=r"\[CLS\]"):
    read_vocab(str(path))
  path.write_text("\n".join(V) + "\n\n")
  assert read_vocab(str(path)) == V


def test_max_seq_length_must_hold_the_special_tokens():
  with pytest.raises(ValueError, match="max_seq_length"):
    TextEncoder(V, 2)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
