"""The label set: explicit, inferred only when unambiguous, checked against
every split, with errors that name the file and line."""

import sys

import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.data import labels
from fastbert_tf.data import sources
from fastbert_tf.data.rows import DataError


def _splits(tmp_path, train, dev=None, test=None, pairs=None):
  """Writes TSVs of (label, text) rows and reads them back."""
  out = {}
  for split, rows in (("train", train), ("dev", dev or train[:2]),
                      ("test", test or train[:2])):
    header = ("label", "text_a", "text_b") if pairs == split else None
    if header:
      rows = [(l, t, "x") for l, t in rows]
    testing.write_tsv(tmp_path / f"{split}.tsv", rows,
                      **({"header": header} if header else {}))
    out[split] = sources.load_split(str(tmp_path), split)
  return out


def _rows(*label_list):
  return [(l, f"text {i}") for i, l in enumerate(label_list)]


def test_inferred_when_train_holds_exactly_0_to_k_minus_1(tmp_path):
  label_set = labels.resolve(_splits(tmp_path, _rows(0, 1, 2, 1, 0)))
  assert label_set == labels.LabelSet(3)


def test_one_typo_label_is_refused_with_its_line(tmp_path):
  # A binary set with one "5": 0..5 would train a 6-class model.
  splits = _splits(tmp_path, _rows(0, 1, 1, 5, 0))
  with pytest.raises(DataError) as e:
    labels.resolve(splits)
  message = str(e.value)
  assert f"{tmp_path / 'train.tsv'}:5:" in message  # header is line 1
  assert "2, 3, 4 never occur" in message


def test_a_huge_label_needs_num_classes(tmp_path):
  splits = _splits(tmp_path, _rows(0, 1, 100000))
  with pytest.raises(DataError, match="100001-class model"):
    labels.resolve(splits)


def test_all_labels_zero_is_a_clear_error(tmp_path):
  with pytest.raises(DataError, match="at least 2 classes"):
    labels.resolve(_splits(tmp_path, _rows(0, 0, 0)))


def test_explicit_num_classes_allows_a_missing_class_in_train(tmp_path):
  label_set = labels.resolve(_splits(tmp_path, _rows(0, 2, 0, 2)),
                             num_classes=3)
  assert label_set.num_classes == 3


def test_label_outside_an_explicit_set_names_file_and_line(tmp_path):
  splits = _splits(tmp_path, _rows(0, 1, 0), dev=_rows(1, 0, 2))
  with pytest.raises(DataError) as e:
    labels.resolve(splits, names=["neg", "pos"])
  assert f"{tmp_path / 'dev.tsv'}:4: label 2 is outside the 2 classes" in (
      str(e.value))


def test_class_only_in_dev_is_refused(tmp_path):
  splits = _splits(tmp_path, _rows(0, 1, 0, 1), test=_rows(1, 2, 0))
  with pytest.raises(DataError) as e:
    labels.resolve(splits, num_classes=3)
  assert f"{tmp_path / 'test.tsv'}:3: class 2" in str(e.value)
  assert "never occurs in the training split" in str(e.value)


def test_names_give_ids_and_survive_a_save(tmp_path):
  label_set = labels.resolve(_splits(tmp_path, _rows(1, 0, 1)),
                             names=["neg", "pos"])
  assert label_set.names == ("neg", "pos") and label_set.name(1) == "pos"
  label_set.save(str(tmp_path))
  assert labels.LabelSet.load(str(tmp_path)) == label_set
  with pytest.raises(DataError, match="--num_classes=3 but --labels"):
    labels.resolve(_splits(tmp_path, _rows(1, 0, 1)), names=["a", "b"],
                   num_classes=3)


def test_pairs_among_single_texts_are_refused(tmp_path):
  with pytest.raises(DataError, match="disagree on single texts vs pairs"):
    labels.resolve(_splits(tmp_path, _rows(0, 1, 0), pairs="dev"))


def test_max_bad_rows_caps_skipping(tmp_path):
  rows = _rows(*([0, 1] * 10)) + [("x", "bad")] * 3
  testing.write_tsv(tmp_path / "t.tsv", rows)
  path = str(tmp_path / "t.tsv")
  data = sources.read_tsv(path, skip_bad_rows=True, max_bad_rows="3")
  assert len(data) == 20 and len(data.skipped) == 3
  with pytest.raises(DataError, match="3 of 23 rows are bad, more than"):
    sources.read_tsv(path, skip_bad_rows=True, max_bad_rows="2")
  with pytest.raises(DataError, match="more than --max_bad_rows allows"):
    sources.read_tsv(path, skip_bad_rows=True, max_bad_rows="10%")
  with pytest.raises(DataError, match="--max_bad_rows='many'"):
    sources.read_tsv(path, skip_bad_rows=True, max_bad_rows="many")


def test_examples_remember_their_lines(tmp_path):
  testing.write_tsv(tmp_path / "t.tsv", _rows(0, 1) + [("x", "bad")] +
                    _rows(1))
  data = sources.read_tsv(str(tmp_path / "t.tsv"), skip_bad_rows=True,
                          max_bad_rows="1")
  assert data.lines == (2, 3, 5)
  assert data.where(2) == f"{tmp_path / 't.tsv'}:5"
  np.testing.assert_array_equal(data.head(2).labels, [0, 1])


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
