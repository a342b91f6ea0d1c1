"""The text rule (one definition of an empty text) and the parsers that
guard the edges: Hypothesis properties over generated texts, labels and
gRPC requests, plus the training data path.

The properties are tests, not fuzz campaigns: a bounded example count and
no deadline (the first call traces TensorFlow functions).
"""

import json
import sys

import grpc
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from fastbert_tf import testing
from fastbert_tf.data import rows
from fastbert_tf.data import sources
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.predictor import records
from fastbert_tf.serving import protos
from fastbert_tf.serving import validation
from fastbert_tf.testing import sentencepiece_models

# What the reproduction of issue 21 used, by class.
INVISIBLE = {
    "zero_width": "\u200b\u200c\u200d\u2060\ufeff",
    "control": "\x00\x01\x07\x1b\x7f\x85",
    "bidi": "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2069",
    "combining": "\u0300\u0301\u0308\u0327\u036f",
    "blank": " \t\n\u3000\u00a0",
}
INVISIBLE_CHARS = "".join(INVISIBLE.values())
LETTERS = "abcxyz好书"
# No example database: the suite also runs from Bazel's read-only runfiles,
# and a failing example is printed (with its seed) in the test's output.
BOUNDED = settings(max_examples=100, deadline=None, database=None)

invisible_texts = st.text(alphabet=INVISIBLE_CHARS, max_size=12)
mixed_texts = st.text(alphabet=INVISIBLE_CHARS + LETTERS, max_size=12)


@pytest.fixture(scope="module")
def encoders():
  return {
      "wordpiece_uncased": TextEncoder(testing.TINY_VOCAB, 16),
      "wordpiece_cased": TextEncoder(testing.TINY_VOCAB, 16, lowercase=False),
      "sentencepiece": SentencePieceEncoder(
          sentencepiece_models.train(dict(unk=3, bos=0, eos=2, pad=1)), 16),
  }


def _only_framing(encoder, text):
  """Independently of the rule: the encoder's full output for `text` holds
  nothing but the framing tokens."""
  mask = encoder(tf.constant([text]))["padding_mask"].numpy()
  framing = encoder._framing.specials(pair=False)  # pylint: disable=protected-access
  return int(mask.sum()) == framing + len(encoder.tokenizer_prefix_ids())


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_each_invisible_class_is_empty_to_the_uncased_wordpiece(encoders,
                                                               kind):
  encoder = encoders["wordpiece_uncased"]
  texts = list(INVISIBLE[kind]) + [INVISIBLE[kind]]
  assert encoder.empty_texts(texts).all(), kind
  assert not encoder.empty_texts([INVISIBLE[kind] + "a"]).any()


@BOUNDED
@given(text=st.one_of(invisible_texts, mixed_texts))
def test_empty_iff_the_tokenizer_yields_only_the_framing(encoders, text):
  for name, encoder in encoders.items():
    assert bool(encoder.empty_texts([text])[0]) == _only_framing(
        encoder, text), (name, text)


@BOUNDED
@given(noise=invisible_texts, letter=st.sampled_from("abcxyz"),
       where=st.integers(0, 12))
def test_a_letter_among_invisible_characters_is_not_empty(encoders, noise,
                                                          letter, where):
  text = noise[:where] + letter + noise[where:]
  encoder = encoders["wordpiece_uncased"]
  assert not encoder.empty_texts([text])[0]
  assert encoder.empty_texts([noise])[0]


# -- training data: empty texts are bad rows ---------------------------------

def _tsv(path, texts):
  testing.write_tsv(path, [(i % 2, t) for i, t in enumerate(texts)])
  return sources.read_tsv(str(path))


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_training_rows_of_invisible_text_name_file_and_line(encoders, tmp_path,
                                                            kind):
  text = INVISIBLE[kind].replace("\n", "").replace("\t", "") or "\u200b"
  data = _tsv(tmp_path / "train.tsv", ["a b", "c", text, "d"])
  with pytest.raises(rows.DataError) as error:
    rows.refuse_empty_texts(data, encoders["wordpiece_uncased"])
  message = str(error.value)
  assert message.startswith(f"{tmp_path / 'train.tsv'}:4: text_a is empty")
  assert "\n" not in message


def test_skip_bad_rows_counts_empty_texts_with_the_other_bad_rows(encoders,
                                                                  tmp_path):
  path = tmp_path / "train.tsv"
  path.write_text("label\ttext_a\n0\ta\nx\tb\n1\t\u200b\u200e\n1\tc\n"
                  "0\t\u0301\n" + "".join(f"{i % 2}\t{c}\n"
                                          for i, c in enumerate("defghij")))
  data = sources.read_tsv(str(path), skip_bad_rows=True, max_bad_rows="3")
  assert len(data.skipped) == 1  # the label typo, before the rule
  data = rows.refuse_empty_texts(data, encoders["wordpiece_uncased"],
                                 skip_bad_rows=True, max_bad_rows="3")
  assert [r.line for r in data.skipped] == [3, 4, 6]
  assert data.texts_a == ("a", "c") + tuple("defghij")
  assert data.lines[:2] == (2, 5)
  with pytest.raises(rows.DataError, match="more than --max_bad_rows"):
    rows.refuse_empty_texts(sources.read_tsv(str(path), skip_bad_rows=True),
                            encoders["wordpiece_uncased"],
                            skip_bad_rows=True, max_bad_rows="2")


# -- the label parsers: an id or a one-line error, nothing else -------------

labels = st.one_of(st.text(st.characters(exclude_categories=("Cs",)),
                           max_size=8),
                   st.integers(-5, 10).map(str), st.sampled_from(
                       ["neg", "pos", "mid", "+1", " 1", "1.0", "٣", "0x1"]))


@BOUNDED
@given(label=labels)
def test_training_label_column_parses_or_names_the_line(tmp_path_factory,
                                                        label):
  path = tmp_path_factory.mktemp("labels") / "train.tsv"
  path.write_bytes(b"label\ttext_a\n" + label.encode() + b"\tsome text\n")
  try:
    data = sources.read_tsv(str(path), num_classes=3)
  except rows.DataError as e:
    assert str(e).startswith(f"{path}:"), str(e)
    assert "\n" not in str(e)
    return
  assert len(data) == 1 and 0 <= int(data.labels[0]) < 3
  assert str(int(data.labels[0])) == label


@BOUNDED
@given(label=st.one_of(labels, st.integers(-3, 5), st.booleans(),
                       st.floats(allow_nan=True), st.none()))
def test_predict_label_field_parses_or_refuses_in_one_line(label):
  parser = records.LineParser("jsonl", False, 3, ("neg", "mid", "pos"))
  line = json.dumps({"text": "a b", "label": label})
  try:
    record = parser.parse(line, 2)
  except rows.RowError as e:
    assert "\n" not in str(e) and "label" in str(e), str(e)
    return
  if label is None:  # no label: unlabelled text
    assert record.label is None
  else:
    assert 0 <= record.label < 3


# -- the gRPC request validator ---------------------------------------------

def _text_signature():
  signature = meta_graph_pb2.SignatureDef()
  text = signature.inputs["text"]
  text.dtype = tf.string.as_datatype_enum
  text.tensor_shape.dim.add().size = -1
  speed = signature.inputs["speed"]
  speed.dtype = tf.float32.as_datatype_enum
  speed.tensor_shape.unknown_rank = True
  return signature


LIMITS = validation.RequestLimits(max_texts=4, max_text_chars=16,
                                  max_request_chars=40)
request_texts = st.lists(
    st.one_of(invisible_texts, mixed_texts,
              st.binary(max_size=6),  # invalid UTF-8 among them
              st.text(max_size=20)), max_size=6)
speeds = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.lists(st.floats(-1, 2), max_size=6))


@BOUNDED
@given(texts=request_texts, speed=speeds)
def test_every_request_is_accepted_well_formed_or_invalid_argument(
    encoders, texts, speed):
  encoder = encoders["wordpiece_uncased"]
  inputs = {"text": protos.make_tensor_proto(
      np.array([t if isinstance(t, bytes) else t.encode() for t in texts],
               dtype=object)),
            "speed": protos.make_tensor_proto(np.asarray(speed, np.float32))}
  try:
    arrays = validation.validate_inputs("serving_default", _text_signature(),
                                        inputs, LIMITS, encoder.empty_texts)
  except protos.ServingError as e:
    assert e.code in (grpc.StatusCode.INVALID_ARGUMENT,
                      grpc.StatusCode.RESOURCE_EXHAUSTED), e
    assert "\n" not in e.message
    return
  accepted = [t.decode("utf-8") for t in arrays["text"]]
  assert 1 <= len(accepted) <= LIMITS.max_texts
  assert not any(_only_framing(encoder, t) for t in accepted), accepted
  speed = arrays["speed"]
  assert speed.size in (1, len(accepted)) and np.all((speed >= 0) &
                                                      (speed <= 1))


def test_sentencepiece_exports_apply_their_own_tokenizer(encoders):
  # The rule is the model's tokenizer's: whatever yields no piece is empty.
  encoder = encoders["sentencepiece"]
  assert encoder.empty_texts(["", "   "]).all()
  assert not encoder.empty_texts(["这本书"]).any()


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
