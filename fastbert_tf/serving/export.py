"""Writing a servable version: `<export_base>/<version>/`, atomically, with
TF Serving warmup requests in `assets.extra/`."""

import os
import uuid

import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from fastbert_tf.inference import criteria
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.serving import export_module

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Short texts in both of the project's languages; warmup only has to trace
# every signature once, not to be representative.
WARMUP_TEXTS = ("This book is wonderful.", "质量太差了，不推荐。")


def next_version(export_base):
  """1 + the largest numeric version under export_base (1 if none)."""
  if not tf.io.gfile.isdir(export_base):
    return 1
  versions = [int(d) for d in tf.io.gfile.listdir(export_base)
              if d.strip("/").isdigit()]
  return max(versions, default=0) + 1


def export_saved_model(model, encoder, export_base, version=None,
                       speed=0.5, criterion=criteria.ExitCriterion(),
                       dispatch="cond"):
  """Exports a servable SavedModel and returns its final directory.

  The SavedModel is written to a hidden temporary directory next to the
  target and renamed into place, so a TF Serving instance polling
  export_base never sees half a model. An existing version is never
  overwritten.

  Args:
    model: built FastBertClassifier.
    encoder: its TextEncoder (vocab, max_seq_length, text_pair).
    export_base: str, the model base path TF Serving watches.
    version: int or None (= next free version).
    speed: float, the speed used in the warmup requests.
    criterion: criteria.ExitCriterion compiled into the signatures.
    dispatch: "cond" (default; converts well to TFLite) or "tensor_array"
      (faster in TF / TF Serving at small batches): see early_exit.

  Returns:
    str, `<export_base>/<version>`.
  """
  if not 0.0 <= speed <= 1.0:  # False for NaN too
    # The graph would reject these warmup requests and TF Serving would
    # refuse to load the version.
    raise ValueError(f"warmup speed must be in [0, 1], got {speed}")
  version = next_version(export_base) if version is None else int(version)
  final = os.path.join(export_base, str(version))
  if tf.io.gfile.exists(final):
    raise FileExistsError(f"{final} already exists; versions are immutable, "
                          "pass another --version")
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  module = export_module.ServingModule(model, encoder, table,
                                       text_pair=encoder.text_pair,
                                       criterion=criterion, dispatch=dispatch)
  tmp = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
  tf.io.gfile.makedirs(export_base)
  try:
    tf.saved_model.save(module, tmp, signatures=module.signatures())
    write_warmup_requests(os.path.join(tmp, WARMUP_FILE), encoder, speed)
    tf.io.gfile.rename(tmp, final)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
  logging.info("Exported %s", final)
  return final


def warmup_requests(encoder, speed):
  """One PredictRequest per signature, for TF Serving's warmup."""
  texts = tf.constant(WARMUP_TEXTS)
  text_inputs = {"text": texts}
  if encoder.text_pair:
    text_inputs["text_b"] = texts
  ids = encoder(texts, texts if encoder.text_pair else None)
  requests = []
  for signature, inputs in (
      (export_module.DEFAULT_SIGNATURE, text_inputs),
      (export_module.SIGNATURE_TEXT, text_inputs),
      (export_module.SIGNATURE_IDS, ids)):
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(signature_name=signature))
    for key, value in inputs.items():
      request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.inputs["speed"].CopyFrom(
        tf.make_tensor_proto(speed, dtype=tf.float32))
    requests.append(request)
  return requests


def write_warmup_requests(path, encoder, speed):
  """Writes the PredictionLog TFRecord TF Serving replays at load time."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for request in warmup_requests(encoder, speed):
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
