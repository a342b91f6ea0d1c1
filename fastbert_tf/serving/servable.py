"""One loaded version of an export: Predict, GetModelMetadata and warmup
over its signatures, as TF Serving's SavedModel servable answers them."""

import os

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops; trap 5)
from tensorflow.core.protobuf import saved_model_pb2

from fastbert_tf.data import tokenizer
from fastbert_tf.serving import batching
from fastbert_tf.serving import protos
from fastbert_tf.serving import validation

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_PB = protos.load()


class Servable:
  """A SavedModel version, loaded.

  Args:
    name: str, the model name requests use.
    version: int.
    path: str, `<model_base_path>/<version>`.
    batching_options: batching.BatchingOptions or None (each request runs
      alone).

  Attributes:
    loaded: the tf.saved_model.load object (in-process comparisons).
    signature_defs: {str: SignatureDef}, as saved.
  """

  def __init__(self, name, version, path, batching_options=None):
    self.name = name
    self.version = int(version)
    self.path = path
    self.signature_defs = dict(read_signature_defs(path))
    self.loaded = tf.saved_model.load(path)
    self.empty_texts = tokenizer.export_text_rule(self.loaded, path)
    self._functions = dict(self.loaded.signatures)
    # export/serving_module.py saves one text function under both keys; calling it
    # through one wrapper saves the second instantiation (seconds of graph
    # optimization per load, under load much more).
    if _same_interface(self.signature_defs, DEFAULT_SIGNATURE, "predict_text"):
      self._functions["predict_text"] = self._functions[DEFAULT_SIGNATURE]
    self._batchers = {}
    if batching_options is not None:
      self._batchers = {
          key: batching.Batcher(self._call(key), batching_options,
                                f"{name}/{version}/{key}")
          for key in self._functions}

  def predict(self, request, limits, note=None):
    """PredictRequest -> PredictResponse.

    Args:
      request: PredictRequest (its model_spec already resolved to this).
      limits: validation.RequestLimits.
      note: dict or None, filled with `signature`, `batch` and `speed` for
        the access log as soon as they are known.

    Raises:
      ServingError (NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED), or a
      tf.errors.OpError from the graph's own checks.
    """
    note = {} if note is None else note
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    note["signature"] = name
    if name not in self._functions:
      raise protos.ServingError(
          grpc.StatusCode.NOT_FOUND,
          f"Serving signature key \"{name}\" not found; the model has "
          f"{sorted(self._functions)}")
    signature_def = self.signature_defs[name]
    outputs = list(request.output_filter) or sorted(signature_def.outputs)
    unknown = sorted(set(outputs) - set(signature_def.outputs))
    if unknown:
      raise validation.invalid(
          f"output_filter names {unknown}, not outputs of '{name}' "
          f"{sorted(signature_def.outputs)}")
    note.update(validation.describe(request.inputs))  # for the log, first
    arrays = validation.validate_inputs(name, signature_def, request.inputs,
                                        limits, self.empty_texts)
    note["speed"] = arrays[validation.SPEED]
    results = self.run(name, arrays)
    response = _PB.predict_pb2.PredictResponse()
    self.fill_spec(response.model_spec, name)
    for key in outputs:
      response.outputs[key].CopyFrom(protos.make_tensor_proto(results[key]))
    return response

  def run(self, signature, arrays):
    """Runs a signature on checked numpy inputs -> {output: np.ndarray}."""
    if signature in self._batchers:
      return self._batchers[signature].run(arrays)
    return self._call(signature)(arrays)

  def _call(self, signature):
    function = self._functions[signature]

    def call(arrays):
      speed = np.asarray(arrays[validation.SPEED], np.float32)
      tensors = {k: tf.constant(v) for k, v in arrays.items()
                 if k != validation.SPEED}
      results = function(speed=tf.constant(speed), **tensors)
      return {k: v.numpy() for k, v in results.items()}
    return call

  def metadata(self, request):
    """GetModelMetadataRequest -> response with the SignatureDefMap, as TF
    Serving packs it (an Any under the key "signature_def")."""
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
      raise validation.invalid(
          f"metadata_field must be ['signature_def'], got {fields}")
    pb = _PB.get_model_metadata_pb2
    response = pb.GetModelMetadataResponse()
    self.fill_spec(response.model_spec)
    response.metadata["signature_def"].Pack(
        pb.SignatureDefMap(signature_def=self.signature_defs))
    return response

  def warmup(self, limits):
    """Replays assets.extra warmup requests, as TF Serving does at load:
    tracing happens before traffic, and a version whose warmup fails is not
    served. Returns their count; raises what the first failure raised."""
    path = os.path.join(self.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
      return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
      log = _PB.prediction_log_pb2.PredictionLog.FromString(record.numpy())
      self.predict(log.predict_log.request, limits)
      count += 1
    return count

  def fill_spec(self, spec, signature_name=None):
    spec.name = self.name
    spec.version.value = self.version
    if signature_name:
      spec.signature_name = signature_name

  def close(self):
    """Stops the batch threads (queued requests are answered first)."""
    for batcher in self._batchers.values():
      batcher.close()


def _same_interface(signature_defs, a, b):
  """Whether two SignatureDefs take and return the same keys, dtypes and
  shapes (their tensor names always differ)."""
  if a not in signature_defs or b not in signature_defs:
    return False

  def interface(signature):
    return (signature.method_name, *(
        sorted((k, v.dtype, v.tensor_shape.SerializeToString())
               for k, v in io.items())
        for io in (signature.inputs, signature.outputs)))
  return interface(signature_defs[a]) == interface(signature_defs[b])


def read_signature_defs(path):
  """The "serve" MetaGraph's SignatureDefs from saved_model.pb."""
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    if "serve" in meta_graph.meta_info_def.tags:
      return meta_graph.signature_def
  raise ValueError(f"{path} has no MetaGraph tagged 'serve'")
