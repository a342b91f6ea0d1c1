"""The Beam pipeline (RunInference + FastBertModelHandler) on the local
runner (FnApiRunner, the DirectRunner's engine) answers as the Predictor
does. Needs the `beam` extra (make test-beam);
skipped without apache_beam."""

import glob
import json
import os
import sys

import numpy as np
import pytest

try:
  import apache_beam as beam
  from fastbert_tf.beam import pipeline
except ImportError:  # not at module level: Bazel runs this file as a script
  beam = pipeline = None
import tensorflow as tf

from fastbert_tf import Predictor
from fastbert_tf.export import exporter
from fastbert_tf.testing import invisible_text as invisible
from fastbert_tf.testing import saved

pytestmark = pytest.mark.skipif(
    beam is None, reason="needs the beam extra (make test-beam)")

NAMES = ("neg", "neutral", "pos")
LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def _texts(n, seed=0):
  rng = np.random.default_rng(seed)
  return [" ".join(rng.choice(LETTERS, size=rng.integers(1, 12)))
          for _ in range(n)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("model"))
  model, encoder = saved.save_tiny_model(model_dir, names=NAMES)
  base = str(tmp_path_factory.mktemp("exports"))
  exporter.export_saved_model(model, encoder, base)
  return model_dir, base


def _run(input_pattern, output, model_path, speed=0.3, input_format=""):
  info = pipeline.describe_model(model_path)
  # The DirectRunner's in-process engine. DirectRunner itself would first
  # try to download Beam's Prism runner binary (no network in tests).
  with beam.Pipeline(runner="FnApiRunner") as p:
    _ = p | pipeline.ClassifyFiles(input_pattern, output, model_path, speed,
                                   info, input_format, batch_size=16)
  answers = []
  for path in sorted(glob.glob(output + "-?????-of-?????.jsonl")):
    with open(path, encoding="utf-8") as f:
      answers += [json.loads(line) for line in f]
  bad = []
  for path in sorted(glob.glob(output + "-bad-*.txt")):
    with open(path, encoding="utf-8") as f:
      bad += f.read().splitlines()
  return answers, bad


def _assert_equal(answers, predictions, order):
  """answers[k] answers the text at position order[k] of predictions."""
  assert len(answers) == len(predictions)
  for answer, i in zip(answers, order):
    assert answer["label"] == int(predictions.label[i])
    assert answer["label_name"] == predictions.label_name[i]
    assert answer["exit_layer"] == int(predictions.exit_layer[i])
    np.testing.assert_allclose(answer["probabilities"],
                               predictions.probabilities[i], atol=2e-6)
    assert answer["flops"] == pytest.approx(float(predictions.flops[i]))


def test_jsonl_on_the_export_equals_the_predictor(models, tmp_path):
  _, base = models
  texts = _texts(300)
  speeds = [None if i % 3 else round(i / 300, 3) for i in range(300)]
  with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as f:
    for i, (text, speed) in enumerate(zip(texts, speeds)):
      record = dict(id=f"r{i}", text=text)
      if speed is not None:
        record["speed"] = speed
      f.write(json.dumps(record) + "\n")
    f.write('{"id": "bad", "text": ""}\n')
    f.write("not json\n")
  answers, bad = _run(str(tmp_path / "in.jsonl"), str(tmp_path / "out"),
                      base)
  want = Predictor.load(base).predict(
      texts, speed=[0.3 if s is None else s for s in speeds])
  answers.sort(key=lambda a: int(a["id"][1:]))
  _assert_equal(answers, want, range(300))
  assert [a["text"] for a in answers] == texts
  assert len(set(a["exit_layer"] for a in answers)) > 1
  assert len(bad) == 2 and all(b.startswith(str(tmp_path / "in.jsonl"))
                               for b in bad)
  assert any("text is empty to the tokenizer" in b for b in bad)
  assert any("not valid json" in b for b in bad)


def test_invisible_only_texts_are_bad_lines_not_failed_batches(models,
                                                               tmp_path):
  """A text of only invisible, control, bidi or combining characters passes
  the parser but is empty to the tokenizer: it goes to the bad lines, and
  the texts batched with it are answered (issue 21: it failed the batch)."""
  _, base = models
  texts = _texts(20, seed=3)
  invisibles = [invisible.invisible_text(alphabet, seed)
                for seed, alphabet in enumerate(invisible.CLASSES.values())]
  with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as f:
    for i, text in enumerate(texts):
      f.write(json.dumps(dict(id=f"r{i}", text=text)) + "\n")
      if i < len(invisibles):
        f.write(json.dumps(dict(id=f"x{i}", text=invisibles[i])) + "\n")
  answers, bad = _run(str(tmp_path / "in.jsonl"), str(tmp_path / "out"),
                      base)
  assert len(bad) == len(invisibles)
  assert all("text is empty to the tokenizer" in b for b in bad)
  answers.sort(key=lambda a: int(a["id"][1:]))
  assert [a["id"] for a in answers] == [f"r{i}" for i in range(20)]
  _assert_equal(answers, Predictor.load(base).predict(texts, speed=0.3),
                range(20))


def test_text_files_on_the_model_dir(models, tmp_path):
  model_dir, _ = models
  texts = _texts(40, seed=1)
  for shard in range(2):
    (tmp_path / f"in-{shard}.txt").write_text(
        "\n".join(texts[shard * 20:(shard + 1) * 20]) + "\n")
  answers, bad = _run(str(tmp_path / "in-*.txt"), str(tmp_path / "out"),
                      model_dir, speed=0.8)
  assert not bad
  want = Predictor.load(model_dir).predict(texts, speed=0.8)
  answers.sort(key=lambda a: texts.index(a["text"]))
  _assert_equal(answers, want, [texts.index(a["text"]) for a in answers])


def test_tfrecords_with_per_record_speed(models, tmp_path):
  model_dir, _ = models
  texts = _texts(30, seed=2)
  path = str(tmp_path / "in.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for i, text in enumerate(texts):
      feature = dict(
          text=tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[text.encode()])),
          id=tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[str(i).encode()])),
          speed=tf.train.Feature(float_list=tf.train.FloatList(
              value=[1.0 if i % 2 else 0.0])))
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())
  answers, bad = _run(path, str(tmp_path / "out"), model_dir)
  assert not bad
  answers.sort(key=lambda a: int(a["id"]))
  assert [a["exit_layer"] for a in answers] == [
      1 if i % 2 else 3 for i in range(30)]
  want = Predictor.load(model_dir).predict(
      texts, speed=[1.0 if i % 2 else 0.0 for i in range(30)])
  _assert_equal(answers, want, range(30))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
