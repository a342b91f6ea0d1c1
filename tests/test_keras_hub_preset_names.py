"""--init_checkpoint with keras-hub preset names and handles: resolved to
keras-hub's download cache. keras-hub's downloader is replaced by a local
directory here (no network in tests)."""

import os
import sys

import keras
import keras_hub
from keras_hub.src.utils import preset_utils
import pytest

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.checkpoints import keras_hub_preset
from fastbert_tf.models.bert_backbone import FastBertBackbone

NAME = "bert_tiny_en_uncased"
HANDLE = "kaggle://keras/bert/keras/bert_tiny_en_uncased/3"


@pytest.fixture(name="cache")
def fixture_cache(tmp_path, monkeypatch):
  """A preset saved locally, served by a stand-in for keras-hub's
  downloader; returns (directory, requested (preset, file) pairs)."""
  keras.utils.set_random_seed(3)
  model = keras_hub.models.BertBackbone(
      vocabulary_size=len(testing.TINY_VOCAB), num_layers=2, num_heads=2,
      hidden_dim=16, intermediate_dim=32, max_sequence_length=32)
  model.save_to_preset(str(tmp_path))
  keras_hub.models.BertTokenizer(vocabulary=testing.TINY_VOCAB,
                                 lowercase=True).save_to_preset(str(tmp_path))
  requested = []

  def get_file(preset, name):
    requested.append((preset, name))
    path = os.path.join(str(tmp_path), name)
    if not os.path.exists(path):
      raise FileNotFoundError(f"`{name}` doesn't exist in `{preset}`")
    return path

  monkeypatch.setattr(preset_utils, "get_file", get_file)
  return str(tmp_path), requested


@pytest.mark.parametrize("reference", [NAME, HANDLE])
def test_names_and_handles_resolve_to_the_download(cache, reference):
  directory, requested = cache
  assert checkpoints.detect_format(reference) == "keras_hub"
  info = checkpoints.read_info(reference)
  assert info.vocab_path == os.path.join(directory, "assets", "tokenizer",
                                         "vocabulary.txt")
  assert {name for preset, name in requested} >= {
      "config.json", "metadata.json", "model.weights.h5"}
  assert {preset for preset, _ in requested} == {reference}
  backbone = FastBertBackbone(**info.architecture)
  report = checkpoints.restore_backbone(backbone, reference)
  assert "pooled_dense/kernel" in report.unused


def test_a_name_keras_hub_does_not_know(cache):
  del cache
  with pytest.raises(FileNotFoundError,
                     match=r"bert_huge_xx: no such file or directory, nor a "
                     r"keras-hub BERT preset name \(those are \[.*"
                     r"'bert_base_en_uncased'"):
    checkpoints.detect_format("bert_huge_xx")


def test_a_failed_download_says_network_is_needed(monkeypatch):
  def offline(preset, name):
    raise ConnectionError("Failed to resolve 'www.kaggle.com'")
  monkeypatch.setattr(preset_utils, "get_file", offline)
  with pytest.raises(FileNotFoundError,
                     match=r"could not download the keras-hub preset "
                     r"\(ConnectionError: Failed to resolve.*need network"):
    checkpoints.read_info(NAME)


def test_local_paths_are_not_references(tmp_path):
  assert not keras_hub_preset.is_preset_reference(str(tmp_path))
  assert keras_hub_preset.resolve(str(tmp_path)) == str(tmp_path)
  assert keras_hub_preset.is_preset_reference("hf://keras/bert_base_en")
  assert not keras_hub_preset.is_preset_reference("runs/model_1")
  assert NAME in keras_hub_preset.bert_preset_names()


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
