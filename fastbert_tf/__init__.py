"""fastbert_tf: FastBERT (Liu et al., ACL 2020) in TensorFlow / Keras 3.

A BERT with a small classifier after every transformer layer, trained by
self-distillation, that answers each input at the first layer confident
enough; `speed` (the exit threshold, 0 = the full model) is chosen at
inference time.

The main names are re-exported here and imported on first use (PEP 562), so
`import fastbert_tf` itself does not import TensorFlow (the gRPC client,
`fastbert_tf.serving.client`, runs without it):

  Predictor, Predictions   classify raw texts with early exit (a training
                           model directory or a SavedModel export)
  FastBertClassifier       the Keras model (its `predict()` returns every
                           layer's logits, no early exit)
  FastBertBackbone         its encoder, passed to it as keras-hub's tasks
                           take theirs
  load_model, save_model   a model directory <-> (model, encoder)
  load_encoder, TextEncoder, SentencePieceEncoder   in-graph tokenizers
  early_exit, compiled_early_exit   the early-exit loop on token ids
  ExitCriterion            the per-sample exit score compared with speed
  flops_table, FlopsTable  FLOPs per sample in the paper's unit
  LabelSet                 a model's classes and their names
  FastBertClient           gRPC client of a served export (no TensorFlow)

Examples:

>>> import fastbert_tf
>>> predictor = fastbert_tf.Predictor.load("runs/quickstart")   # or an export
>>> out = predictor.predict(["这本书非常好看", "质量太差了"], speed=0.5)
>>> out.label_name, out.exit_layer       # names from labels.json, else ids
>>> out.probabilities, out.flops, out.speedup
>>> table = fastbert_tf.flops_table(predictor.model.get_config(), 128)
>>> table.baseline, table.max_speedup    # FLOPs of the full model, ceiling
"""

import importlib

__version__ = "0.1.0"

# name -> module that defines it; imported by __getattr__ on first access.
_EXPORTS = {
    "Predictor": "fastbert_tf.predictor",
    "Predictions": "fastbert_tf.predictor",
    "FastBertClassifier": "fastbert_tf.models.fastbert_classifier",
    "FastBertBackbone": "fastbert_tf.models.bert_backbone",
    "load_model": "fastbert_tf.models.saving",
    "save_model": "fastbert_tf.models.saving",
    "load_encoder": "fastbert_tf.data.tokenizer",
    "TextEncoder": "fastbert_tf.data.tokenizer",
    "SentencePieceEncoder": "fastbert_tf.data.tokenizer",
    "early_exit": "fastbert_tf.inference.early_exit",
    "compiled_early_exit": "fastbert_tf.inference.early_exit",
    "ExitCriterion": "fastbert_tf.inference.criteria",
    "flops_table": "fastbert_tf.inference.flops",
    "FlopsTable": "fastbert_tf.inference.flops",
    "LabelSet": "fastbert_tf.data.labels",
    "FastBertClient": "fastbert_tf.serving.client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  module = _EXPORTS.get(name)
  if module is None:
    raise AttributeError(f"module 'fastbert_tf' has no attribute {name!r}")
  value = getattr(importlib.import_module(module), name)
  globals()[name] = value  # later lookups skip __getattr__
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
