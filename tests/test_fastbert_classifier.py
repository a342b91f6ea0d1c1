"""Tests for the backbone, FastBertClassifier and models.saving."""

import sys

import keras
import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.errors import ModelDirError
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.models import architecture
from fastbert_tf.models import saving
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.models.fastbert_classifier import FastBertClassifier
from fastbert_tf.testing import layer_tests

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large


def test_sublayer_names_are_stable():
  model = testing.tiny_model()
  assert [l.name for l in model.backbone.transformer_layers] == [
      "transformer_layer_0", "transformer_layer_1", "transformer_layer_2"]
  assert [c.name for c in model.students] == ["student_classifier_0",
                                              "student_classifier_1"]
  assert model.teacher.name == "teacher_classifier"
  assert model.classifiers[-1] is model.teacher


def test_call_returns_every_classifier_and_backbone_every_layer():
  model = testing.tiny_model()
  inputs = testing.random_inputs(4, 7, model.backbone.vocabulary_size)
  assert model(inputs).shape == (4, 3, 3)
  hidden = model.backbone(inputs)
  assert len(hidden) == 3 and hidden[0].shape == (4, 7, 16)


def test_padding_does_not_change_real_positions():
  model = testing.tiny_model()
  inputs = testing.random_inputs(3, 6, 30, seed=3)
  padded = {k: np.pad(v, [(0, 0), (0, 4)]) for k, v in inputs.items()}
  np.testing.assert_allclose(model(inputs).numpy(), model(padded).numpy(),
                             atol=1e-5)


def test_layer_norm_epsilon_reaches_every_layer_norm():
  model = testing.tiny_model(layer_norm_epsilon=1e-7)
  assert model.backbone.embeddings.layer_norm.epsilon == 1e-7
  for layer in model.backbone.transformer_layers:
    assert layer.layer_norm_epsilon == 1e-7


def test_get_config_round_trip():
  model = testing.tiny_model(pooling="mean", activation="gelu_approximate",
                             layer_norm_type="uer")
  clone = FastBertClassifier.from_config(model.get_config())
  assert clone.get_config() == model.get_config()


def test_save_and_load_reproduce_outputs(tmp_path):
  model = testing.tiny_model(seed=4)
  encoder = TextEncoder(testing.TINY_VOCAB, 12, lowercase=True)
  saving.save_model(model, encoder, str(tmp_path))
  loaded, loaded_encoder = saving.load_model(str(tmp_path))
  inputs = testing.random_inputs(5, 9, len(testing.TINY_VOCAB), seed=5)
  np.testing.assert_allclose(model(inputs).numpy(), loaded(inputs).numpy(),
                             atol=1e-6)
  assert loaded_encoder.vocab == encoder.vocab
  assert loaded_encoder.max_seq_length == 12


def test_load_model_names_the_missing_file(tmp_path):
  with pytest.raises(ModelDirError, match="not a fastbert_tf model directory "
                     r"\(no MANIFEST.json or config.json\)"):
    saving.load_model(str(tmp_path))


def test_bad_architecture_is_rejected():
  with pytest.raises(ValueError, match="divisible"):
    testing.tiny_model(hidden_dim=15)
  with pytest.raises(ValueError, match="num_classes"):
    testing.tiny_model(num_classes=1)


def _task_kwargs(**overrides):
  """tiny_config as a task's kwargs: a FastBertBackbone object + the heads'."""
  backbone, head = architecture.split(testing.tiny_config(**overrides))
  return dict(head, backbone=FastBertBackbone(**backbone))


def test_layer_harness():
  kwargs = _task_kwargs()
  layer_tests.run_layer_test(
      FastBertClassifier, kwargs,
      testing.random_inputs(4, 7, kwargs["backbone"].vocabulary_size),
      expected_output_shape=(4, 3, 3),
      # backbone 5 + 3 * 16, three classifiers of 14
      expected_num_trainable_weights=5 + 3 * 16 + 3 * 14,
      float32_outputs=True, float32_sublayers=("logits_dense",))


@pytest.mark.parametrize("overrides", [
    {}, dict(layer_norm_type="uer", activation="gelu_approximate",
             pooling="max", dtype="mixed_bfloat16")],
                         ids=["bert", "uer-mixed_bfloat16"])
def test_keras_saving(overrides, tmp_path):
  kwargs = _task_kwargs(dropout=0.0, **overrides)
  restored = layer_tests.run_model_saving_test(
      FastBertClassifier, kwargs,
      testing.random_inputs(4, 7, kwargs["backbone"].vocabulary_size, seed=6),
      path=str(tmp_path))
  assert restored.dtype_policy.name == overrides.get("dtype", "float32")
  assert restored.backbone.dtype_policy.name == restored.dtype_policy.name


def test_backbone_is_an_argument_with_a_nested_config():
  # keras-hub's task shape: the backbone object goes in, its serialized
  # config comes out, and from_config rebuilds the same class.
  backbone = FastBertBackbone(vocabulary_size=34, num_layers=2, num_heads=2,
                              hidden_dim=16, intermediate_dim=32,
                              layer_norm_type="uer")
  model = FastBertClassifier(backbone=backbone, num_classes=4, pooling="mean")
  assert model.backbone is backbone and model.num_layers == 2
  assert (model.num_classes, model.pooling) == (4, "mean")
  config = model.get_config()
  assert config["backbone"] == keras.saving.serialize_keras_object(backbone)
  assert config["backbone"]["class_name"] == "FastBertBackbone"
  assert "num_layers" not in config  # the architecture lives in one place
  clone = FastBertClassifier.from_config(config)
  assert type(clone.backbone) is FastBertBackbone
  assert clone.backbone.layer_norm_type == "uer"
  assert clone.get_config() == config


def test_flat_config_still_builds_the_model():
  # config.json of directories written before the backbone became an
  # argument: one flat dict.
  flat = testing.tiny_config(pooling="max", layer_norm_type="uer")
  model = FastBertClassifier.from_config(flat)
  assert model.backbone.layer_norm_type == "uer" and model.pooling == "max"
  got = architecture.flatten(model.get_config())
  assert {k: got[k] for k in flat} == flat
  assert got["exit_temperatures"] is None and got["num_segments"] == 2


def test_dtype_other_than_the_backbones_is_refused():
  backbone = FastBertBackbone(34, 2, 2, 16, 32)
  with pytest.raises(ValueError, match="backbone's 'float32'"):
    FastBertClassifier(backbone, num_classes=2, dtype="mixed_bfloat16")
  with pytest.raises(TypeError, match="FastBertBackbone"):
    FastBertClassifier(keras.layers.Dense(3), num_classes=2)


def test_load_model_runs_in_another_dtype(tmp_path):
  model = testing.tiny_model(seed=4, dtype="mixed_bfloat16")
  saving.save_model(model, TextEncoder(testing.TINY_VOCAB, 12), str(tmp_path))
  config = saving.read_json(str(tmp_path / "config.json"))
  assert config["dtype"] == config["backbone"]["config"]["dtype"] == (
      "mixed_bfloat16")
  loaded, _ = saving.load_model(str(tmp_path), dtype="float32")
  assert loaded.dtype_policy.name == "float32"
  assert loaded.backbone.dtype_policy.name == "float32"


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
