"""Tests for fastbert_tf.data.pipeline."""

import sys

import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.data import pipeline
from fastbert_tf.data.sources import TextDataset
from fastbert_tf.data.tokenizer import TextEncoder


def _data(n, pairs=False, labels=True):
  texts = tuple(" ".join("abcdefg"[: 1 + i % 7]) for i in range(n))
  return TextDataset(
      texts_a=texts, texts_b=texts if pairs else None,
      labels=np.arange(n, dtype=np.int32) % 2 if labels else None,
      source="test")


def test_every_example_arrives_once_in_order():
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  batches = list(pipeline.make_dataset(_data(10), encoder, batch_size=4))
  assert [len(labels) for _, labels in batches] == [4, 4, 2]  # nothing dropped
  labels = np.concatenate([l.numpy() for _, l in batches])
  np.testing.assert_array_equal(labels, np.arange(10) % 2)
  first, _ = batches[0]
  assert first["token_ids"].dtype.name == "int32"
  # Padded to the longest sample of the batch: 4 letters + [CLS] + [SEP].
  assert first["token_ids"].shape == (4, 6)


def test_shuffle_is_seeded_and_keeps_all_examples():
  encoder = TextEncoder(testing.TINY_VOCAB, 16)

  def labels_in_order(seed):
    data = _data(12)
    data = TextDataset(data.texts_a, None, np.arange(12, dtype=np.int32),
                       "test")
    ds = pipeline.make_dataset(data, encoder, 5, shuffle=True, seed=seed)
    return np.concatenate([l.numpy() for _, l in ds]).tolist()

  assert labels_in_order(1) == labels_in_order(1)
  assert sorted(labels_in_order(1)) == list(range(12))
  assert labels_in_order(1) != list(range(12))


def test_pairs_produce_two_segments():
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  features, _ = next(iter(pipeline.make_dataset(_data(3, pairs=True), encoder, 3)))
  assert features["segment_ids"].numpy().max() == 1


@pytest.mark.parametrize("labels,with_labels", [(False, True), (True, False)])
def test_unlabeled_elements_are_features_only(labels, with_labels):
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  ds = pipeline.make_dataset(_data(5, labels=labels), encoder, 5,
                             with_labels=with_labels)
  element = next(iter(ds))
  assert isinstance(element, dict)
  assert set(element) == {"token_ids", "segment_ids", "padding_mask"}


def test_token_lengths_count_specials_before_truncation():
  encoder = TextEncoder(testing.TINY_VOCAB, 5)  # room for 3 letters
  lengths = pipeline.token_lengths(_data(7), encoder, chunk=3)
  assert lengths.tolist() == [3, 4, 5, 6, 7, 8, 9]  # 1..7 letters + 2


def _labels_and_widths(ds):
  batches = list(ds)
  return ([l.numpy().tolist() for _, l in batches],
          [f["token_ids"].shape[1] for f, _ in batches])


def test_length_grouping_pads_less_and_keeps_every_example():
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  data = _data(28)
  data = TextDataset(data.texts_a, None, np.arange(28, dtype=np.int32), "t")
  plain = pipeline.make_dataset(data, encoder, 4, shuffle=True, seed=3)
  grouped = pipeline.make_dataset(data, encoder, 4, shuffle=True, seed=3,
                                  length_group=7)
  labels, widths = _labels_and_widths(grouped)
  assert sorted(sum(labels, [])) == list(range(28))
  _, plain_widths = _labels_and_widths(plain)
  assert sum(widths) < sum(plain_widths)
  # Every grouped batch holds texts of one length (i % 7 letters).
  assert all(len({i % 7 for i in batch}) == 1 for batch in labels)
  # Seeded: the same order again; another epoch reshuffles.
  assert _labels_and_widths(pipeline.make_dataset(
      data, encoder, 4, shuffle=True, seed=3, length_group=7))[0] == labels


def test_length_grouping_without_shuffle_keeps_labels_with_their_texts():
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  data = _data(10)
  data = TextDataset(data.texts_a, None, np.arange(10, dtype=np.int32), "t")
  seen = []
  for features, labels in pipeline.make_dataset(data, encoder, 3,
                                                length_group=2):
    # Text i has 1 + i % 7 letters and label i: both travel together.
    letters = features["padding_mask"].numpy().sum(1) - 2
    np.testing.assert_array_equal(letters, 1 + labels.numpy() % 7)
    seen += labels.numpy().tolist()
  assert sorted(seen) == list(range(10)) and seen != list(range(10))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
