"""Hugging Face BERT directories: config.json + safetensors or a PyTorch .bin.

Tensor names come with a `bert.` prefix (BertModel inside BertFor* heads)
or without (a bare BertModel, e.g. sentence-transformers' MiniLM). Old
conversions name LayerNorm parameters gamma/beta instead of weight/bias.
PyTorch Linear weights are [out, in]: the `*_t` layouts transpose them.
"""

import contextlib
import os

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import files

FORMAT = "huggingface"
NEEDS = ("config.json and model.safetensors (or model.safetensors.index.json "
         "with its shards, or pytorch_model.bin); a tokenizer optional: "
         "vocab.txt (WordPiece), or sentencepiece.bpe.model (fairseq "
         "offset) / a Unigram tokenizer.json (SentencePiece, XLM-R framing)")

_LAYER = "{prefix}encoder.layer.{i}."
MAP = {
    "embeddings/token_embedding/embeddings":
        ("{prefix}embeddings.word_embeddings.weight", "same"),
    "embeddings/position_embedding/embeddings":
        ("{prefix}embeddings.position_embeddings.weight", "same"),
    "embeddings/segment_embedding/embeddings":
        ("{prefix}embeddings.token_type_embeddings.weight", "same"),
    "embeddings/embeddings_layer_norm/gamma":
        ("{prefix}embeddings.LayerNorm.{gamma}", "same"),
    "embeddings/embeddings_layer_norm/beta":
        ("{prefix}embeddings.LayerNorm.{beta}", "same"),
    "transformer_layer_{i}/self_attention_layer/query/kernel":
        (_LAYER + "attention.self.query.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/query/bias":
        (_LAYER + "attention.self.query.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/key/kernel":
        (_LAYER + "attention.self.key.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/key/bias":
        (_LAYER + "attention.self.key.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/value/kernel":
        (_LAYER + "attention.self.value.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/value/bias":
        (_LAYER + "attention.self.value.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/attention_output/kernel":
        (_LAYER + "attention.output.dense.weight", "out_kernel_t"),
    "transformer_layer_{i}/self_attention_layer/attention_output/bias":
        (_LAYER + "attention.output.dense.bias", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/gamma":
        (_LAYER + "attention.output.LayerNorm.{gamma}", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/beta":
        (_LAYER + "attention.output.LayerNorm.{beta}", "same"),
    "transformer_layer_{i}/feedforward_intermediate_dense/kernel":
        (_LAYER + "intermediate.dense.weight", "kernel_t"),
    "transformer_layer_{i}/feedforward_intermediate_dense/bias":
        (_LAYER + "intermediate.dense.bias", "same"),
    "transformer_layer_{i}/feedforward_output_dense/kernel":
        (_LAYER + "output.dense.weight", "kernel_t"),
    "transformer_layer_{i}/feedforward_output_dense/bias":
        (_LAYER + "output.dense.bias", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/gamma":
        (_LAYER + "output.LayerNorm.{gamma}", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/beta":
        (_LAYER + "output.LayerNorm.{beta}", "same"),
}

UNUSED = (
    (r"(bert\.)?pooler\..*", "pooler (FastBERT classifies hidden states)"),
    (r"(bert\.)?embeddings\.(position_ids|token_type_ids)",
     "index buffer, not a weight"),
    (r"cls\.predictions\..*", "masked-LM head"),
    (r"cls\.seq_relationship\..*", "next-sentence head"),
    (r"classifier\.(weight|bias)", "BertForSequenceClassification head"),
)

# hidden_act -> FastBertBackbone activation. HF's "gelu" is the exact erf form;
# "gelu_new"/"gelu_pytorch_tanh" are the tanh approximation.
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate", "relu": "relu"}

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                 "pytorch_model.bin")


def matches(path):
  return (os.path.isdir(path) and
          files.optional_file(path, "config.json") is not None and
          files.optional_file(path, *_WEIGHT_FILES) is not None and
          "hidden_size" in files.read_json(os.path.join(path, "config.json")))


def read_info(path):
  """config.json (+ tokenizer_config.json) -> CheckpointInfo."""
  config_path = os.path.join(path, "config.json")
  config = files.read_json(config_path)
  if config.get("model_type", "bert") != "bert":
    raise ValueError(f"{config_path}: model_type {config['model_type']!r}; "
                     "only BERT ('bert') checkpoints are supported")
  if config.get("position_embedding_type", "absolute") != "absolute":
    raise ValueError(f"{config_path}: position_embedding_type "
                     f"{config['position_embedding_type']!r}; only "
                     "'absolute' is supported")
  # Missing optional fields take BertConfig's defaults, as transformers does.
  architecture = files.bert_config_architecture(
      config, config_path, _ACTIVATIONS, default_segments=2,
      layer_norm_epsilon=files.field(config, "layer_norm_eps", config_path,
                                     float, default=1e-12))
  tokenizer_path = files.optional_file(path, "tokenizer_config.json")
  lowercase = True
  if tokenizer_path:
    lowercase = bool(files.read_json(tokenizer_path).get("do_lower_case",
                                                         True))
  vocab = files.optional_file(path, "vocab.txt")
  sentencepiece = None if vocab else _sentencepiece_model(path)
  if sentencepiece:
    # SentencePiece checkpoints (XLM-R family, multilingual-e5) are cased
    # and framed <s> a </s></s> b </s>; a text prefix, if the model wants
    # one (e5: "query: "), comes from --text_prefix.
    return base.CheckpointInfo(FORMAT, architecture, None, False,
                               input_format="xlmr",
                               sentencepiece_model=sentencepiece)
  return base.CheckpointInfo(FORMAT, architecture, vocab, lowercase)


def _sentencepiece_model(path):
  """The directory's SentencePiece tokenizer as a ModelProto in model-id
  order, or None: sentencepiece.bpe.model (fairseq ids) first, else a
  Unigram tokenizer.json."""
  from fastbert_tf.data import sentencepiece_model  # pylint: disable=g-import-not-at-top
  model_file = files.optional_file(path, "sentencepiece.bpe.model")
  if model_file:
    with open(model_file, "rb") as f:
      return sentencepiece_model.from_fairseq_model(f.read(), model_file)
  json_file = files.optional_file(path, "tokenizer.json")
  if json_file:
    config = files.read_json(json_file)
    if (config.get("model") or {}).get("type") == "Unigram":
      return sentencepiece_model.from_unigram_tokenizer_json(config,
                                                             json_file)
  return None


def load_tensors(path):
  """-> TensorSource over the directory's weight file(s)."""
  single = os.path.join(path, "model.safetensors")
  index = os.path.join(path, "model.safetensors.index.json")
  if os.path.isfile(single):
    return _safetensors_source({None: single})
  if os.path.isfile(index):
    weight_map = files.read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
      raise ValueError(f"{index}: field 'weight_map' is missing")
    return _safetensors_source(
        {k: os.path.join(path, v) for k, v in weight_map.items()})
  return base.TensorSource.from_arrays(
      files.load_torch_state_dict(os.path.join(path, "pytorch_model.bin")))


def _safetensors_source(name_to_file):
  """{tensor name (None: all in the file): safetensors file} -> TensorSource."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  shapes, where = {}, {}
  for wanted, file in name_to_file.items():
    with _readable(file):
      with safe_open(file, framework="np") as f:
        for name in ([wanted] if wanted else f.keys()):
          shapes[name] = tuple(f.get_slice(name).get_shape())
          where[name] = file

  def load(name):
    with _readable(where[name]):
      with safe_open(where[name], framework="np") as f:
        return f.get_tensor(name)
  return base.TensorSource(shapes, load)


@contextlib.contextmanager
def _readable(path):
  """Turns a truncated or foreign weight file's error into one naming it."""
  try:
    yield
  except base.CheckpointMismatchError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    detail = str(e).splitlines()[0] if str(e) else ""
    raise base.CheckpointMismatchError(
        f"{path}: not a readable safetensors file ({type(e).__name__}: "
        f"{detail})") from None


def table(source):
  """-> (MAP, UNUSED, fields) for this checkpoint's naming variant."""
  names = source.shapes
  if "bert.embeddings.word_embeddings.weight" in names:
    prefix = "bert."
  elif "embeddings.word_embeddings.weight" in names:
    prefix = ""
  else:
    raise base.CheckpointMismatchError(
        "no BERT word embeddings ('[bert.]embeddings.word_embeddings.weight')"
        f" among the tensors; found e.g. {sorted(names)[:8]}")
  legacy = f"{prefix}embeddings.LayerNorm.gamma" in names
  fields = dict(prefix=prefix, gamma="gamma" if legacy else "weight",
                beta="beta" if legacy else "bias")
  return MAP, UNUSED, fields
