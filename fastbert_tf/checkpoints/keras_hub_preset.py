"""keras-hub BertBackbone presets: a directory saved with
`save_to_preset(dir)`, or (with network) a keras-hub preset name such as
`bert_base_en_uncased` or a handle such as
`kaggle://keras/bert/keras/bert_base_en_uncased/2` or `hf://keras/...`.

Names and handles are downloaded by keras-hub into its cache (kagglehub's)
and read from there (`resolve`); a directory needs no network. Weights are
loaded with keras-hub itself (`BertBackbone.from_preset`) and copied weight
by weight: our sublayers carry keras-hub's names, so the map is the identity
up to our `embeddings/` level.
"""

import os
import re

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import files

FORMAT = "keras_hub"
NEEDS = ("config.json (a serialized keras_hub BertBackbone), "
         "model.weights.h5 and metadata.json; tokenizer.json + "
         "assets/tokenizer/vocabulary.txt optional")

_L = "transformer_layer_{i}/"
MAP = {
    "embeddings/token_embedding/embeddings":
        ("token_embedding/embeddings", "same"),
    "embeddings/position_embedding/embeddings":
        ("position_embedding/embeddings", "same"),
    "embeddings/segment_embedding/embeddings":
        ("segment_embedding/embeddings", "same"),
    "embeddings/embeddings_layer_norm/gamma":
        ("embeddings_layer_norm/gamma", "same"),
    "embeddings/embeddings_layer_norm/beta":
        ("embeddings_layer_norm/beta", "same"),
}
MAP.update({
    _L + name: (_L + name, "same") for name in (
        "self_attention_layer/query/kernel", "self_attention_layer/query/bias",
        "self_attention_layer/key/kernel", "self_attention_layer/key/bias",
        "self_attention_layer/value/kernel", "self_attention_layer/value/bias",
        "self_attention_layer/attention_output/kernel",
        "self_attention_layer/attention_output/bias",
        "self_attention_layer_norm/gamma", "self_attention_layer_norm/beta",
        "feedforward_intermediate_dense/kernel",
        "feedforward_intermediate_dense/bias",
        "feedforward_output_dense/kernel", "feedforward_output_dense/bias",
        "feedforward_layer_norm/gamma", "feedforward_layer_norm/beta")
})

UNUSED = ((r"pooled_dense/(kernel|bias)",
           "pooler (FastBERT classifies hidden states)"),)

_VOCAB = os.path.join("assets", "tokenizer", "vocabulary.txt")
_HANDLE_PREFIXES = ("kaggle://", "hf://", "gs://", "modelscope://")
_PRESET_FILES = ("config.json", "metadata.json", "model.weights.h5")
_OPTIONAL_FILES = ("tokenizer.json", _VOCAB)


def bert_preset_names():
  """The BertBackbone preset names keras-hub knows (imports keras_hub)."""
  import keras_hub  # pylint: disable=g-import-not-at-top
  return sorted(keras_hub.models.BertBackbone.presets)


def is_preset_reference(path):
  """True for a keras-hub handle (`kaggle://...`, `hf://...`) or a name
  like `bert_base_en_uncased` that is no local path."""
  path = str(path)
  if path.startswith(_HANDLE_PREFIXES):
    return True
  return (not os.path.exists(path) and
          re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", path) is not None)


def resolve(path, get_file=None):
  """The local preset directory for a keras-hub name or handle (downloaded
  into keras-hub's cache); any other path is returned unchanged.

  Args:
    path: str.
    get_file: callable(preset, file) -> local path (tests); default
      keras-hub's own downloader.

  Raises:
    FileNotFoundError: a name keras-hub does not know as a BERT preset, or
      a download that failed (no network, unknown handle), with the reason.
  """
  if not is_preset_reference(path):
    return path
  if "://" not in path:
    names = bert_preset_names()
    if path not in names:
      raise FileNotFoundError(
          f"{path}: no such file or directory, nor a keras-hub BERT preset "
          f"name (those are {names})")
  if get_file is None:
    from keras_hub.src.utils import preset_utils  # pylint: disable=g-import-not-at-top
    get_file = preset_utils.get_file
  try:
    local = [get_file(path, name) for name in _PRESET_FILES]
  except Exception as e:  # pylint: disable=broad-except
    raise FileNotFoundError(
        f"{path}: could not download the keras-hub preset ({type(e).__name__}"
        f": {str(e).splitlines()[0] if str(e) else ''}); names and handles "
        "need network access, offline pass a directory saved with "
        "save_to_preset") from None
  for name in _OPTIONAL_FILES:
    try:
      get_file(path, name)
    except FileNotFoundError:
      pass
  return os.path.dirname(local[0])


def matches(path):
  if not (os.path.isdir(path) and
          files.optional_file(path, "config.json") and
          files.optional_file(path, "model.weights.h5") and
          files.optional_file(path, "metadata.json")):
    return False
  return "class_name" in files.read_json(os.path.join(path, "config.json"))


def read_info(path):
  """config.json (+ tokenizer.json) -> CheckpointInfo."""
  path = resolve(path)
  config_path = os.path.join(path, "config.json")
  serialized = files.read_json(config_path)
  if serialized.get("class_name") != "BertBackbone":
    raise ValueError(f"{config_path}: class_name "
                     f"{serialized.get('class_name')!r}, expected "
                     "'BertBackbone'")
  config = serialized.get("config", {})

  def get(key):
    return files.field(config, key, config_path)

  architecture = dict(
      vocabulary_size=get("vocabulary_size"), num_layers=get("num_layers"),
      num_heads=get("num_heads"), hidden_dim=get("hidden_dim"),
      intermediate_dim=get("intermediate_dim"),
      max_sequence_length=get("max_sequence_length"),
      num_segments=get("num_segments"),
      # keras-hub's BertBackbone hard-codes both.
      layer_norm_epsilon=1e-12, activation="gelu_approximate")
  tokenizer_path = files.optional_file(path, "tokenizer.json")
  lowercase = True
  if tokenizer_path:
    tokenizer = files.read_json(tokenizer_path).get("config", {})
    # keras-hub's BertTokenizer defaults to lowercase=False.
    lowercase = bool(tokenizer.get("lowercase", False))
  return base.CheckpointInfo(FORMAT, architecture,
                             files.optional_file(path, _VOCAB), lowercase)


def load_tensors(path):
  """-> TensorSource over the weights of the preset loaded by keras-hub."""
  import keras_hub  # pylint: disable=g-import-not-at-top
  model = keras_hub.models.BertBackbone.from_preset(resolve(path))
  return base.TensorSource.from_keras_model(model)


def table(source):
  del source  # One naming variant only.
  return MAP, UNUSED, {}
