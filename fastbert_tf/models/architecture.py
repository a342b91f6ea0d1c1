"""A FastBERT model's architecture as one flat dict of keras-hub names.

The model itself is `FastBertClassifier(backbone=FastBertBackbone(...),
num_classes=...)` and its config nests the backbone's, as keras-hub's tasks
do. Flags, presets, `--config_json`, the FLOPs table and model directories
written before the backbone became an argument speak one flat dict
(`num_layers=..., hidden_dim=..., num_classes=...`); `split` and `flatten`
translate. No Keras here: the FLOPs command imports it.
"""

# FastBertBackbone's constructor arguments.
BACKBONE_KEYS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                 "intermediate_dim", "max_sequence_length", "num_segments",
                 "dropout", "layer_norm_epsilon", "activation",
                 "layer_norm_type")
# FastBertClassifier's own (the heads'); `dropout` is in both: one flat
# dropout sets the backbone's and the classifiers'.
HEAD_KEYS = ("num_classes", "classifier_hidden_dim", "classifier_num_heads",
             "pooling", "dropout", "exit_temperatures")
# Passed to both objects.
SHARED_KEYS = ("dtype",)


def split(flat):
  """Flat architecture kwargs -> (backbone kwargs, classifier kwargs).

  Args:
    flat: dict with BACKBONE_KEYS, HEAD_KEYS and `dtype` entries (any may be
      missing: the constructors' defaults apply), plus optionally `name`
      (the classifier's).

  Returns:
    (dict, dict).

  Raises:
    TypeError: an unknown key, named (as a constructor would).
  """
  unknown = sorted(set(flat) - set(BACKBONE_KEYS) - set(HEAD_KEYS) -
                   set(SHARED_KEYS) - {"name"})
  if unknown:
    raise TypeError(f"unexpected architecture arguments {unknown}")
  backbone = {k: v for k, v in flat.items()
              if k in BACKBONE_KEYS or k in SHARED_KEYS}
  head = {k: v for k, v in flat.items() if k not in BACKBONE_KEYS or
          k in HEAD_KEYS}
  return backbone, head


def is_nested(config):
  """True for a config whose backbone is a nested (serialized) object."""
  return isinstance(config.get("backbone"), dict)


def flatten(config):
  """A FastBertClassifier config, nested or flat -> the flat dict.

  Args:
    config: `FastBertClassifier.get_config()` (the backbone serialized
      inside it), a model directory's config.json of any age, or flat
      kwargs.

  Returns:
    dict of BACKBONE_KEYS and HEAD_KEYS present in `config`; the
    classifiers' `dropout` wins over the backbone's.
  """
  if not is_nested(config):
    return dict(config)
  backbone = config["backbone"].get("config", {})
  flat = {k: backbone[k] for k in BACKBONE_KEYS if k in backbone}
  flat.update((k, v) for k, v in config.items() if k in HEAD_KEYS)
  return flat


def with_dtype(config, dtype):
  """A copy of a config (nested or flat) that runs under `dtype`.

  Args:
    config: dict, as for `flatten`.
    dtype: str, a Keras dtype policy name.
  """
  config = dict(config, dtype=dtype)
  if is_nested(config):
    backbone = dict(config["backbone"])
    backbone["config"] = dict(backbone["config"], dtype=dtype)
    config["backbone"] = backbone
  return config


def check_temperatures(temperatures, num_layers):
  """L floats, all 1.0 for None.

  Raises:
    ValueError: not L values, or one not > 0.
  """
  if temperatures is None:
    return [1.0] * num_layers
  values = [float(t) for t in temperatures]
  if len(values) != num_layers or not all(t > 0 for t in values):
    raise ValueError(f"exit_temperatures must be {num_layers} numbers > 0, "
                     f"got {temperatures}")
  return values
