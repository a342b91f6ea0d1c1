"""Hugging Face reader: parity with a numpy BERT, naming variants, errors."""

import json
import os
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import numpy_bert

ARCH = dict(vocabulary_size=len(testing.TINY_VOCAB), num_layers=2,
            hidden_dim=16, intermediate_dim=32, max_sequence_length=32,
            num_segments=2)


def _config(**overrides):
  config = dict(model_type="bert", vocab_size=ARCH["vocabulary_size"],
                num_hidden_layers=2, num_attention_heads=2, hidden_size=16,
                intermediate_size=32, max_position_embeddings=32,
                type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu")
  config.update(overrides)
  return config


def write_checkpoint(path, tensors, config=None, tokenizer_config=None):
  """A Hugging Face directory: config.json, model.safetensors, vocab.txt."""
  os.makedirs(path, exist_ok=True)
  save_file(tensors, os.path.join(path, "model.safetensors"))
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config or _config(), f)
  if tokenizer_config is not None:
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
      json.dump(tokenizer_config, f)
  with open(os.path.join(path, "vocab.txt"), "w") as f:
    f.write("\n".join(testing.TINY_VOCAB) + "\n")
  return str(path)


def hf_tensors(params, prefix="bert.", heads=True):
  """BertForPreTraining-like state: encoder + pooler + buffers (+ heads)."""
  tensors = numpy_bert.to_names(params, numpy_bert.HF_NAMES, True, prefix)
  tensors[prefix + "pooler.dense.weight"] = np.eye(16, dtype=np.float32)
  tensors[prefix + "pooler.dense.bias"] = np.zeros(16, np.float32)
  tensors[prefix + "embeddings.position_ids"] = np.arange(32)[None]
  if heads:
    tensors["cls.predictions.bias"] = np.zeros(34, np.float32)
    tensors["cls.seq_relationship.weight"] = np.zeros((2, 16), np.float32)
  return tensors


def restore_and_compare(path, params, activation="gelu"):
  info = checkpoints.read_info(path)
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  inputs = testing.random_inputs(4, 11, ARCH["vocabulary_size"], seed=2)
  ours = [h.numpy() for h in backbone(inputs)]
  reference = numpy_bert.forward(params, inputs["token_ids"],
                                 inputs["segment_ids"],
                                 inputs["padding_mask"], num_heads=2,
                                 activation=activation)
  diffs = numpy_bert.layer_diffs(ours, reference, inputs["padding_mask"])
  assert max(diffs) < 1e-5, diffs
  return report


def test_prefixed_safetensors_match_numpy_reference(tmp_path):
  params = numpy_bert.random_params(**ARCH, seed=1)
  path = write_checkpoint(tmp_path, hf_tensors(params))
  assert checkpoints.detect_format(path) == "huggingface"
  report = restore_and_compare(path, params)
  assert len(report.consumed) == 5 + 2 * 16
  assert set(report.unused) == {
      "bert.pooler.dense.weight", "bert.pooler.dense.bias",
      "bert.embeddings.position_ids", "cls.predictions.bias",
      "cls.seq_relationship.weight"}
  assert (report.consumed["bert.encoder.layer.1.attention.self.key.weight"]
          == "transformer_layer_1/self_attention_layer/key/kernel")


def test_unprefixed_legacy_layer_norm_names(tmp_path):
  # sentence-transformers' BertModel: no "bert." prefix; old conversions
  # name LayerNorm parameters gamma/beta.
  params = numpy_bert.random_params(**ARCH, seed=3)
  tensors = hf_tensors(params, prefix="", heads=False)
  tensors = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
              .replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in tensors.items()}
  restore_and_compare(write_checkpoint(tmp_path, tensors), params)


def test_tanh_gelu_config(tmp_path):
  params = numpy_bert.random_params(**ARCH, seed=4)
  path = write_checkpoint(tmp_path, hf_tensors(params),
                          _config(hidden_act="gelu_new"))
  assert checkpoints.read_info(path).architecture["activation"] == (
      "gelu_approximate")
  restore_and_compare(path, params, activation="gelu_approximate")


def test_read_info_fields(tmp_path):
  params = numpy_bert.random_params(**ARCH)
  path = write_checkpoint(tmp_path, hf_tensors(params),
                          _config(layer_norm_eps=1e-7),
                          tokenizer_config={"do_lower_case": False})
  info = checkpoints.read_info(path)
  assert info.format == "huggingface"
  assert info.architecture == dict(ARCH, num_heads=2, layer_norm_epsilon=1e-7,
                                   activation="gelu")
  assert info.vocab_path == os.path.join(path, "vocab.txt")
  assert info.lowercase is False


def test_roberta_is_refused(tmp_path):
  params = numpy_bert.random_params(**ARCH)
  path = write_checkpoint(tmp_path, hf_tensors(params),
                          _config(model_type="roberta"))
  with pytest.raises(ValueError, match="model_type 'roberta'"):
    checkpoints.read_info(path)


def test_missing_tensor_is_named(tmp_path):
  tensors = hf_tensors(numpy_bert.random_params(**ARCH))
  del tensors["bert.encoder.layer.1.output.dense.bias"]
  path = write_checkpoint(tmp_path, tensors)
  backbone = FastBertBackbone(**checkpoints.read_info(path).architecture)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"missing.*bert\.encoder\.layer\.1\.output\.dense"
                     r"\.bias"):
    checkpoints.restore_backbone(backbone, path)


def test_unexpected_tensor_is_named(tmp_path):
  tensors = hf_tensors(numpy_bert.random_params(**ARCH))
  tensors["bert.encoder.layer.0.attention.self.rotary.weight"] = np.zeros(
      3, np.float32)
  path = write_checkpoint(tmp_path, tensors)
  backbone = FastBertBackbone(**checkpoints.read_info(path).architecture)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"unexpected.*attention\.self\.rotary\.weight"):
    checkpoints.restore_backbone(backbone, path)


def test_wrong_shape_names_source_target_and_shapes(tmp_path):
  tensors = hf_tensors(numpy_bert.random_params(**ARCH))
  name = "bert.encoder.layer.0.intermediate.dense.weight"
  tensors[name] = np.zeros((16, 32), np.float32)  # [in, out]: not transposed
  path = write_checkpoint(tmp_path, tensors)
  backbone = FastBertBackbone(**checkpoints.read_info(path).architecture)
  backbone.build((None, None))
  before = [w.numpy() for w in backbone.weights]
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.restore_backbone(backbone, path)
  message = str(error.value)
  assert name in message and "(16, 32)" in message
  assert "transformer_layer_0/feedforward_intermediate_dense/kernel" in message
  assert "expects (32, 16)" in message
  for w, b in zip(backbone.weights, before):  # Nothing was written.
    np.testing.assert_array_equal(w.numpy(), b)


def test_architecture_mismatch_is_named(tmp_path):
  path = write_checkpoint(tmp_path,
                          hf_tensors(numpy_bert.random_params(**ARCH)))
  architecture = dict(checkpoints.read_info(path).architecture,
                      activation="gelu_approximate", max_sequence_length=16)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"activation: backbone has 'gelu_approximate', "
                     r"checkpoint needs 'gelu'"):
    checkpoints.restore_backbone(FastBertBackbone(**architecture), path)


def test_sharded_safetensors(tmp_path):
  params = numpy_bert.random_params(**ARCH, seed=6)
  tensors = hf_tensors(params)
  path = write_checkpoint(tmp_path, tensors)
  os.remove(os.path.join(path, "model.safetensors"))
  names = sorted(tensors)
  shards = {"model-00001-of-00002.safetensors": names[::2],
            "model-00002-of-00002.safetensors": names[1::2]}
  weight_map = {}
  for file, shard in shards.items():
    save_file({n: tensors[n] for n in shard}, os.path.join(path, file))
    weight_map.update({n: file for n in shard})
  with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": weight_map}, f)
  restore_and_compare(path, params)


def test_pytorch_bin(tmp_path):
  # A dev requirement: this test must run, not skip, in make test and CI.
  import torch  # pylint: disable=g-import-not-at-top
  params = numpy_bert.random_params(**ARCH, seed=5)
  path = write_checkpoint(tmp_path, hf_tensors(params))
  os.remove(os.path.join(path, "model.safetensors"))
  state = {k: torch.from_numpy(v) for k, v in hf_tensors(params).items()}
  torch.save(state, os.path.join(path, "pytorch_model.bin"))
  assert checkpoints.detect_format(path) == "huggingface"
  restore_and_compare(path, params)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
