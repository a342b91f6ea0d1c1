"""UER reader and the exact UER LayerNorm it needs.

The state dict is read with torch; most tests hand the reader numpy arrays
in its place, and one writes and reads a real .bin (torch is a dev
requirement, so that test runs in make test and CI).
"""

import json
import os
import sys

import numpy as np
import pytest

from fastbert_tf import checkpoints
from fastbert_tf import testing
from fastbert_tf.checkpoints import files
from fastbert_tf.data import sources
from fastbert_tf.layers.bert_embeddings import UerLayerNormalization
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import numpy_bert
from fastbert_tf.training import build
from fastbert_tf.training.config import TrainConfig

ARCH = dict(vocabulary_size=len(testing.TINY_VOCAB), num_layers=2,
            hidden_dim=16, intermediate_dim=32, max_sequence_length=512,
            num_segments=3)


def write_uer_dir(path, tensors, torch=None):
  """model.bin + UER config json + vocab, like the authors' models/ dir."""
  os.makedirs(path, exist_ok=True)
  bin_path = os.path.join(path, "fastbert_zh.bin")
  if torch is None:
    with open(bin_path, "wb") as f:
      f.write(b"stand-in: the tests read `tensors` instead")
  else:
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, bin_path)
  config = dict(emb_size=16, hidden_size=16, feedforward_size=32, heads_num=2,
                layers_num=2, dropout=0.1, vocab_path="models/zh_vocab.txt")
  with open(os.path.join(path, "bert_tiny_config.json"), "w") as f:
    json.dump(config, f)
  with open(os.path.join(path, "zh_vocab.txt"), "w") as f:
    f.write("\n".join(testing.TINY_VOCAB) + "\n")
  return str(path), bin_path


def uer_tensors(params, prefix=""):
  tensors = numpy_bert.to_names(params, numpy_bert.UER_NAMES, True, prefix)
  tensors[prefix + "target.mlm_linear_1.weight"] = np.eye(16,
                                                          dtype=np.float32)
  tensors["classifiers.0.output_layer_0.weight"] = np.zeros((8, 16),
                                                            np.float32)
  return tensors


def uer_inputs(batch, seq, seed):
  """UER packing: segment ids 1 (first sentence) / 2, 0 on padding."""
  inputs = testing.random_inputs(batch, seq, ARCH["vocabulary_size"], seed)
  inputs["segment_ids"] = (inputs["segment_ids"] + 1) * inputs["padding_mask"]
  return inputs


def restore_and_compare(path, params):
  info = checkpoints.read_info(path)
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  inputs = uer_inputs(3, 12, seed=31)
  ours = [h.numpy() for h in backbone(inputs)]
  reference = numpy_bert.forward(
      params, inputs["token_ids"], inputs["segment_ids"],
      inputs["padding_mask"], num_heads=2, layer_norm_epsilon=1e-6,
      layer_norm_type="uer")
  diffs = numpy_bert.layer_diffs(ours, reference, inputs["padding_mask"])
  assert max(diffs) < 1e-5, diffs
  return report


def test_uer_layer_norm_is_exact():
  rng = np.random.default_rng(0)
  x = rng.normal(0, 3, (2, 5, 16)).astype(np.float32)
  layer = UerLayerNormalization(epsilon=1e-6)
  layer.build(x.shape)
  gamma, beta = rng.normal(1, 0.2, 16), rng.normal(0, 0.2, 16)
  layer.gamma.assign(gamma.astype(np.float32))
  layer.beta.assign(beta.astype(np.float32))
  expected = numpy_bert.layer_norm(x.astype(np.float64), gamma, beta, 1e-6,
                                   "uer")
  np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-6)
  # It is not BERT's LayerNorm: the unbiased std differs by sqrt(n/(n-1)).
  bert = numpy_bert.layer_norm(x.astype(np.float64), gamma, beta, 1e-6)
  assert np.max(np.abs(bert - expected)) > 1e-2


def test_backbone_config_round_trips_layer_norm_type():
  backbone = FastBertBackbone(**dict(ARCH, num_heads=2), layer_norm_type="uer")
  clone = FastBertBackbone.from_config(backbone.get_config())
  assert clone.get_config() == backbone.get_config()
  clone.build((None, None))
  assert isinstance(clone.embeddings.layer_norm, UerLayerNormalization)
  for layer in clone.transformer_layers:
    for name in ("_self_attention_layer_norm", "_feedforward_layer_norm"):
      assert isinstance(getattr(layer, name), UerLayerNormalization)
  names = sorted(w.path.split("/", 1)[1] for w in clone.weights)
  default = FastBertBackbone(**dict(ARCH, num_heads=2))
  default.build((None, None))
  assert names == sorted(w.path.split("/", 1)[1] for w in default.weights)
  with pytest.raises(ValueError, match="layer_norm_type"):
    FastBertBackbone(**dict(ARCH, num_heads=2), layer_norm_type="rms")


def test_read_info(tmp_path):
  path, bin_path = write_uer_dir(tmp_path, {})
  for where in (path, bin_path):
    assert checkpoints.detect_format(where) == "uer"
    info = checkpoints.read_info(where)
    assert info.architecture == dict(
        ARCH, num_heads=2, layer_norm_epsilon=1e-6, activation="gelu",
        layer_norm_type="uer")
    assert info.vocab_path == os.path.join(path, "zh_vocab.txt")
    assert info.input_format == "uer"  # `[CLS] a`, segment ids 1/2


def test_training_encoder_packs_the_uer_way(tmp_path):
  path, _ = write_uer_dir(tmp_path, {})
  info = checkpoints.read_info(path)
  train = sources.TextDataset(("好 书",), None, np.array([1], np.int32), "t")
  # An explicit --vocab does not change how the checkpoint wants its inputs.
  cfg = TrainConfig(model_dir=str(tmp_path / "run"), max_seq_length=8,
                    vocab=info.vocab_path)
  encoder = build.build_encoder(cfg, train, info)
  assert encoder.input_format == "uer"
  out = encoder(["好书"])
  assert out["segment_ids"].numpy().tolist() == [[1, 1, 1]]  # no [SEP]
  plain = build.build_encoder(cfg, train, None)  # no checkpoint: BERT's
  assert plain.input_format == "bert"


@pytest.mark.parametrize("prefix", ["", "kernel."])
def test_matches_numpy_uer_reference(tmp_path, monkeypatch, prefix):
  params = numpy_bert.random_params(**ARCH, seed=30)
  tensors = uer_tensors(params, prefix)
  path, _ = write_uer_dir(tmp_path, tensors)
  monkeypatch.setattr(files, "load_torch_state_dict", lambda _: tensors)
  report = restore_and_compare(path, params)
  assert len(report.consumed) == 5 + 2 * 16
  assert set(report.unused) == {prefix + "target.mlm_linear_1.weight",
                                "classifiers.0.output_layer_0.weight"}


def test_bert_layer_norm_backbone_is_refused(tmp_path):
  path, _ = write_uer_dir(tmp_path, {})
  architecture = dict(checkpoints.read_info(path).architecture)
  del architecture["layer_norm_type"]
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match="layer_norm_type: backbone has 'bert'"):
    checkpoints.restore_backbone(FastBertBackbone(**architecture), path)


def test_real_torch_bin(tmp_path):
  # A dev requirement: this test must run, not skip, in make test and CI.
  import torch  # pylint: disable=g-import-not-at-top
  params = numpy_bert.random_params(**ARCH, seed=33)
  path, _ = write_uer_dir(tmp_path, uer_tensors(params), torch=torch)
  restore_and_compare(path, params)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
