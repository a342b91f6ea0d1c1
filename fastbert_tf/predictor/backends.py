"""How a Predictor reaches its model: a training model directory, a
SavedModel export, or a server. Each builds `classify(text, text_b, speed)`
(numpy in, numpy out) and reads what the Predictor reports (classes, depth,
full-model FLOPs, label names). TensorFlow is imported inside the loaders,
never by the gRPC path.
"""

import json
import os

import numpy as np
from absl import logging

from fastbert_tf.data.labels import LabelSet

TEXT_SIGNATURE = "predict_text"
# Where an export may carry its label names (the training directory's
# labels.json, copied); without one, labels are reported as ids.
EXPORT_LABEL_FILES = (os.path.join("assets.extra", "labels.json"),
                      os.path.join("assets", "labels.json"))


def resolve_model_path(path):
  """("model_dir" | "saved_model", directory) for a Predictor path.

  Raises:
    FileNotFoundError: neither a model directory, a SavedModel version nor
      an export base with a numeric version.
  """
  path = os.fspath(path)
  has = lambda *names: os.path.exists(os.path.join(path, *names))
  # Any trace of a training directory makes it one: load_model then names
  # what is wrong with it (a file missing or changed, a run unfinished).
  if has("config.json") or has("MANIFEST.json") or has(".run"):
    return "model_dir", path
  if has("saved_model.pb"):
    return "saved_model", path
  versions = export_versions(path)
  if versions:
    return "export_base", path
  raise FileNotFoundError(
      f"{path}: not a model: expected a fastbert_tf model directory "
      "(config.json, model.weights.h5, tokenizer.json), a SavedModel "
      "version directory (saved_model.pb) or an export base holding "
      f"numeric versions; found {sorted(_listdir(path))[:20]}")


def export_versions(base):
  """An export base's version directories holding a saved_model.pb, newest
  first."""
  numbers = sorted((int(d) for d in _listdir(base) if d.isdigit() and
                    os.path.exists(os.path.join(base, d, "saved_model.pb"))),
                   reverse=True)
  return [os.path.join(base, str(n)) for n in numbers]


def from_export_base(cls, base, batch_size):
  """Predictor.load of an export base: its newest version that loads, as
  the server serves it (a newer one may be broken or half copied).

  Raises:
    ValueError: no version loads; names the newest one's error.
  """
  errors = []
  for version_dir in export_versions(base):
    try:
      return from_saved_model(cls, version_dir, batch_size)
    except ValueError as e:
      errors.append(e)
      logging.warning("%s; trying the previous version.", e)
  raise ValueError(f"{base}: no version loads: {errors[0]}")


def _listdir(path):
  return os.listdir(path) if os.path.isdir(path) else []


def from_model_dir(cls, model_dir, batch_size, dtype, criterion, dispatch,
                   single_text="loop"):
  """Predictor.load of a training model directory: the export's text
  function (ServingModule.predict_text) over the loaded Keras model."""
  if single_text not in ("loop", "xla"):
    raise ValueError(f"single_text must be 'loop' or 'xla', got "
                     f"{single_text!r}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import flops as flops_lib  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  from fastbert_tf.export import serving_module  # pylint: disable=g-import-not-at-top
  model, encoder = saving.load_model(model_dir, dtype=dtype)
  if criterion is None:
    criterion = criteria.ExitCriterion(**_recorded_criterion(model_dir))
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  # The export's own text function: a model directory and its export
  # answer through the same graph.
  buckets = None
  if single_text == "xla":
    from fastbert_tf.inference import single_text as single_text_lib  # pylint: disable=g-import-not-at-top
    buckets = single_text_lib.buckets_for(encoder.max_seq_length)
  module = serving_module.ServingModule(model, encoder, table,
                                       text_pair=encoder.text_pair,
                                       criterion=criterion, dispatch=dispatch,
                                       single_text_buckets=buckets)

  def classify(text, text_b, speed):
    args = dict(text=tf.constant(text, tf.string),
                speed=tf.constant(speed, tf.float32))
    if text_b is not None:
      args["text_b"] = tf.constant(text_b, tf.string)
    return {k: v.numpy() for k, v in module.predict_text(**args).items()}

  predictor = cls(classify, model.num_classes, model.num_layers,
                  table.baseline, encoder.text_pair,
                  LabelSet.load(model_dir, model.num_classes), model_dir,
                  batch_size, empty_texts=encoder.empty_texts)
  predictor.model, predictor.encoder = model, encoder
  predictor.criterion = criterion
  return predictor


def _recorded_criterion(model_dir):
  """results.json's exit_criterion ({name, top_k}), or {} (entropy)."""
  path = os.path.join(model_dir, "results.json")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    recorded = json.load(f).get("exit_criterion") or {}
  return {k: recorded[k] for k in ("name", "top_k") if k in recorded}


def from_saved_model(cls, version_dir, batch_size):
  """Predictor.load of a SavedModel version: its predict_text signature."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  try:
    loaded = tf.saved_model.load(version_dir)
  except Exception as e:  # pylint: disable=broad-except
    # DecodeError, OSError, OpError...: a damaged or half-copied export.
    line = (str(e).strip().splitlines() or [""])[0][:200]
    raise ValueError(
        f"{os.path.join(version_dir, 'saved_model.pb')}: cannot be loaded "
        f"({type(e).__name__}: {line}); expected a SavedModel written by "
        "export/export_saved_model.py") from None
  if TEXT_SIGNATURE not in loaded.signatures:
    raise FileNotFoundError(
        f"{version_dir}: the SavedModel has no {TEXT_SIGNATURE!r} signature "
        f"(it has {sorted(loaded.signatures)}); export it with "
        "export/export_saved_model.py")
  signature = loaded.signatures[TEXT_SIGNATURE]
  text_pair = "text_b" in signature.structured_input_signature[1]
  num_classes = signature.structured_outputs["probabilities"].shape[-1]

  def classify(text, text_b, speed):
    args = dict(text=tf.constant(text, tf.string),
                speed=tf.constant(speed, tf.float32))
    if text_b is not None:
      args["text_b"] = tf.constant(text_b, tf.string)
    return {k: v.numpy() for k, v in signature(**args).items()}

  # The export records neither its depth nor its full-model cost: one text
  # at speed 0 leaves after the last layer and costs exactly the baseline.
  probe = classify(np.array(["a"], object),
                   np.array(["a"], object) if text_pair else None,
                   np.zeros([1], np.float32))
  labels = None
  for name in EXPORT_LABEL_FILES:
    path = os.path.join(version_dir, name)
    if os.path.exists(path):
      labels = LabelSet.load(os.path.dirname(path), num_classes)
      break
  from fastbert_tf.data import tokenizer  # pylint: disable=g-import-not-at-top
  predictor = cls(classify, num_classes, int(probe["exit_layer"][0]),
                  float(probe["flops"][0]), text_pair, labels, version_dir,
                  batch_size,
                  empty_texts=tokenizer.export_text_rule(loaded, version_dir))
  predictor.loaded = loaded
  return predictor


def from_server(cls, address, model_name, timeout, signature,
                label_names, batch_size):
  """Predictor.connect: a served export, through the TF-free gRPC client."""
  from fastbert_tf.serving import client as client_lib  # pylint: disable=g-import-not-at-top
  client = client_lib.FastBertClient(address, model_name, timeout)
  signatures = client.metadata()
  if signature not in signatures:
    raise ValueError(f"{address}/{model_name}: no signature {signature!r}"
                     f" (it has {sorted(signatures)})")
  text_pair = "text_b" in signatures[signature].inputs

  def classify(text, text_b, speed):
    return client.predict(list(text), np.asarray(speed, np.float32),
                          signature, None if text_b is None else
                          list(text_b))

  probe = classify(["a"], ["a"] if text_pair else None,
                   np.zeros([1], np.float32))
  num_classes = probe["probabilities"].shape[-1]
  labels = LabelSet(num_classes, label_names) if label_names else None
  predictor = cls(classify, num_classes, int(probe["exit_layer"][0]),
                  float(probe["flops"][0]), text_pair, labels,
                  f"{address}/{model_name}", batch_size)
  predictor.client = client
  return predictor

