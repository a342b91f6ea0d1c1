"""Tests for the backbone, FastBertClassifier and models.saving."""

import sys

import numpy as np
import pytest

from fastbert_tf import testing
from fastbert_tf.errors import ModelDirError
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.models import saving
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
  inputs = testing.random_inputs(4, 7, model.get_config()["vocabulary_size"])
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


def test_layer_harness():
  config = testing.tiny_config()
  layer_tests.run_layer_test(
      FastBertClassifier, config,
      testing.random_inputs(4, 7, config["vocabulary_size"]),
      expected_output_shape=(4, 3, 3),
      # backbone 5 + 3 * 16, three classifiers of 14
      expected_num_trainable_weights=5 + 3 * 16 + 3 * 14,
      float32_outputs=True, float32_sublayers=("logits_dense",))


@pytest.mark.parametrize("overrides", [
    {}, dict(layer_norm_type="uer", activation="gelu_approximate",
             pooling="max", dtype="mixed_bfloat16")],
                         ids=["bert", "uer-mixed_bfloat16"])
def test_keras_saving(overrides, tmp_path):
  config = testing.tiny_config(dropout=0.0, **overrides)
  restored = layer_tests.run_model_saving_test(
      FastBertClassifier, config,
      testing.random_inputs(4, 7, config["vocabulary_size"], seed=6),
      path=str(tmp_path))
  assert restored.dtype_policy.name == overrides.get("dtype", "float32")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
