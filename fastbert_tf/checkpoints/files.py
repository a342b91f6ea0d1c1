"""File helpers the readers share: json configs, vocab files, config fields."""

import json
import os


def read_json(path):
  """Reads a json object; the error names the file."""
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid json ({e})") from e
  if not isinstance(value, dict):
    raise ValueError(f"{path}: expected a json object, got "
                     f"{type(value).__name__}")
  return value


_REQUIRED = object()


def field(config, key, path, kind=int, default=_REQUIRED):
  """config[key] as `kind`; errors name the file, the field and the value."""
  if key not in config and default is _REQUIRED:
    raise ValueError(f"{path}: field {key!r} is missing")
  value = config.get(key, default)
  if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
    raise ValueError(f"{path}: field {key!r} = {value!r}, expected an int")
  if kind is float and not isinstance(value, (int, float)):
    raise ValueError(f"{path}: field {key!r} = {value!r}, expected a number")
  return kind(value)


def optional_file(directory, *names):
  """The first of `names` present in `directory`, else None."""
  for name in names:
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  return None


def count_vocab(path):
  """Number of tokens in a vocab.txt (trailing blank lines ignored)."""
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  while lines and not lines[-1].strip("\r"):
    lines.pop()
  return len(lines)


def listing(path):
  """Sorted file names in a directory (or the file itself), for messages."""
  if os.path.isdir(path):
    return sorted(os.listdir(path))
  return [os.path.basename(path)] if os.path.exists(path) else []


def load_torch_state_dict(path):
  """A PyTorch state dict as {name: numpy array}, without trusting pickles.

  torch is an optional extra (`pip install fastbert_tf[torch]`), imported
  only here; `weights_only=True` refuses arbitrary pickled objects.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"{path}: reading a PyTorch .bin needs torch "
                      "(pip install 'fastbert_tf[torch]')") from e
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    # Truncated or foreign files raise many kinds of errors in torch.
    raise ValueError(f"{path}: not a readable PyTorch state dict "
                     f"({type(e).__name__}: {str(e).splitlines()[0]})"
                     ) from None
  if not isinstance(state, dict) or not all(
      isinstance(v, torch.Tensor) for v in state.values()):
    raise ValueError(f"{path}: expected a state dict of tensors, got "
                     f"{type(state).__name__}")
  return {k: (v.float() if v.is_floating_point() else v).numpy()
          for k, v in state.items()}


def bert_config_architecture(config, config_path, activations,
                             default_segments, layer_norm_epsilon):
  """FastBertBackbone kwargs from a BERT config dict (Google's
  bert_config.json and Hugging Face's config.json share these field names).

  Args:
    config: dict, the parsed json.
    config_path: str, for error messages.
    activations: {hidden_act value: our activation name}.
    default_segments: int, type_vocab_size when the file omits it.
    layer_norm_epsilon: float, used as is (Google's code hard-codes 1e-12;
      Hugging Face files may say `layer_norm_eps`).
  """
  act = config.get("hidden_act", "gelu")
  if act not in activations:
    raise ValueError(f"{config_path}: hidden_act {act!r}, expected one of "
                     f"{sorted(activations)}")
  return dict(
      vocabulary_size=field(config, "vocab_size", config_path),
      num_layers=field(config, "num_hidden_layers", config_path),
      num_heads=field(config, "num_attention_heads", config_path),
      hidden_dim=field(config, "hidden_size", config_path),
      intermediate_dim=field(config, "intermediate_size", config_path),
      max_sequence_length=field(config, "max_position_embeddings",
                                config_path, default=512),
      num_segments=field(config, "type_vocab_size", config_path,
                         default=default_segments),
      layer_norm_epsilon=layer_norm_epsilon,
      activation=activations[act])
