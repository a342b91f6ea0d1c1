"""Reading our own saved models' backbones; format detection errors."""

import os
import sys

import numpy as np
import pytest

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.models import saving
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.models.fastbert_classifier import FastBertClassifier


def test_backbone_round_trips_into_a_new_task(tmp_path):
  model = testing.tiny_model(seed=21)
  saving.save_model(model, TextEncoder(testing.TINY_VOCAB, 16,
                                       lowercase=False), str(tmp_path))
  path = str(tmp_path)
  assert checkpoints.detect_format(path) == "fastbert_tf"
  info = checkpoints.read_info(path)
  assert info.vocab_path == os.path.join(path, "vocab.txt")
  assert info.lowercase is False
  assert info.input_format == "bert"
  # A different number of classes: only the backbone carries over.
  new = FastBertClassifier(FastBertBackbone(**info.architecture),
                           num_classes=5)
  new.build()
  report = checkpoints.restore_backbone(new.backbone, path)
  target = "transformer_layer_2/feedforward_layer_norm/beta"
  assert report.consumed["backbone/" + target] == target
  assert any(k.startswith("teacher_classifier/") for k in report.unused)
  assert any(k.startswith("student_classifier_1/") for k in report.unused)
  inputs = testing.random_inputs(3, 8, len(testing.TINY_VOCAB), seed=22)
  for a, b in zip(model.backbone(inputs), new.backbone(inputs)):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_uer_input_format_survives_save_and_reload(tmp_path):
  model = testing.tiny_model(seed=3)
  encoder = TextEncoder(testing.TINY_VOCAB, 16, input_format="uer")
  saving.save_model(model, encoder, str(tmp_path))
  assert checkpoints.read_info(str(tmp_path)).input_format == "uer"
  _, reloaded = saving.load_model(str(tmp_path))
  assert reloaded.input_format == "uer"
  assert reloaded(["a b"])["segment_ids"].numpy().tolist() == [[1, 1, 1]]


def test_unknown_directory_lists_files_and_needs(tmp_path):
  (tmp_path / "weights.npz").write_bytes(b"")
  with pytest.raises(ValueError) as error:
    checkpoints.detect_format(str(tmp_path))
  message = str(error.value)
  assert "weights.npz" in message
  for fmt in checkpoints.FORMATS:
    assert f"  {fmt}: " in message
  assert "bert_config.json" in message and "model.safetensors" in message


def test_missing_path():
  with pytest.raises(FileNotFoundError, match="no such file"):
    checkpoints.read_info("/nonexistent/checkpoint")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
