"""A gRPC client for a FastBERT export behind TF Serving (or the local
stand-in, fastbert_tf.serving.server). It does not import TensorFlow: the
TF Serving API stubs are plain protobuf (protos.py), tensors are built
with numpy, so a call from the shell starts in well under a second.

  python -m fastbert_tf.serving.client --server=127.0.0.1:8500 \
      --model_name=fastbert --speed=0.5 "some text" "another text"

prints one line per input (`format_result`): label, probabilities, exit
layer, uncertainty (the command line is fastbert_tf/commands/client.py).

Python API:

  with FastBertClient("127.0.0.1:8500", "fastbert", timeout=10.0) as client:
    out = client.predict(["some text"], speed=0.5)   # or speed=[0.1, ...]
    out["label"], out["probabilities"], out["exit_layer"]  # numpy arrays
"""

import grpc
import numpy as np

from fastbert_tf.serving import protos

_PB = protos.load()
ServingError = protos.ServingError
DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_IDS = "predict_ids"


class FastBertClient:
  """Calls TF Serving's PredictionService for one model.

  Args:
    server: str, "HOST:PORT".
    model_name: str, the served model's name.
    timeout: float, seconds per call (gRPC deadline).
    max_message_bytes: int, largest request / response this client sends
      or accepts.

  Every method raises ServingError (code + one-line message) on failure.
  """

  def __init__(self, server, model_name="default", timeout=10.0,
               max_message_bytes=64 << 20):
    self.server = server
    self.model_name = model_name
    self.timeout = float(timeout)
    self._channel = grpc.insecure_channel(server, options=[
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes)])
    self._stub = _PB.prediction_service_pb2_grpc.PredictionServiceStub(
        self._channel)

  def predict(self, texts, speed, signature=DEFAULT_SIGNATURE, text_b=None,
              version=None, version_label=None):
    """Classifies raw texts.

    Args:
      texts: list of str (or bytes, sent as is), the batch; a lone str is a
        batch of one.
      speed: float in [0, 1] for every text, or a list / float32 [batch]
        with one speed per text; higher exits earlier. Required: the model
        has no default.
      signature: str, a text signature (serving_default / predict_text).
      text_b: list of str, second segments for pair models (same length).
      version: int or None (= the newest the server serves).
      version_label: str or None, e.g. "stable" (instead of version).

    Returns:
      dict of np.ndarray: `probabilities` float32 [batch, C], `label`,
      `exit_layer` int32 [batch], `uncertainty`, `flops` float32 [batch].
    """
    inputs = {"text": _batch(texts)}
    if text_b is not None:
      inputs["text_b"] = _batch(text_b)
    return self._predict(inputs, speed, signature, version, version_label)

  def predict_ids(self, token_ids, segment_ids, padding_mask, speed,
                  version=None, version_label=None):
    """Classifies tokenized inputs (int [batch, seq] each) with
    `predict_ids`; speed as in predict(); returns the same dict."""
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
              "padding_mask": padding_mask}
    inputs = {k: np.asarray(v, dtype=np.int32) for k, v in inputs.items()}
    return self._predict(inputs, speed, SIGNATURE_IDS, version, version_label)

  def predict_response(self, inputs, signature=DEFAULT_SIGNATURE,
                       version=None, version_label=None):
    """The raw call: inputs {str: TensorProto or array} -> PredictResponse
    (with its model_spec). Arrays are sent with their own dtype (Python
    floats as float32, ints as int32, text as DT_STRING)."""
    request = _PB.predict_pb2.PredictRequest()
    self._fill_spec(request.model_spec, version, version_label)
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
      if not isinstance(value, _PB.tensor_pb2.TensorProto):
        value = protos.make_tensor_proto(value)
      request.inputs[key].CopyFrom(value)
    return self._call(self._stub.Predict, request)

  def metadata(self, version=None, version_label=None):
    """{signature name: SignatureDef} the server reports."""
    pb = _PB.get_model_metadata_pb2
    request = pb.GetModelMetadataRequest(metadata_field=["signature_def"])
    self._fill_spec(request.model_spec, version, version_label)
    response = self._call(self._stub.GetModelMetadata, request)
    signatures = pb.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    return dict(signatures.signature_def)

  def close(self):
    self._channel.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def _predict(self, inputs, speed, signature, version, version_label):
    inputs = dict(inputs, speed=protos.make_tensor_proto(speed, np.float32))
    response = self.predict_response(inputs, signature, version,
                                     version_label)
    return {name: protos.make_ndarray(proto, name)
            for name, proto in response.outputs.items()}

  def _fill_spec(self, spec, version, version_label):
    spec.name = self.model_name
    if version is not None:
      spec.version.value = int(version)
    elif version_label:
      spec.version_label = version_label

  def _call(self, method, request):
    try:
      return method(request, timeout=self.timeout)
    except grpc.RpcError as e:
      raise _error(e, self.server, self.timeout) from None


def _batch(texts):
  return np.array([texts] if isinstance(texts, (str, bytes)) else
                  list(texts), dtype=object)


def _error(rpc_error, server, timeout):
  """grpc.RpcError -> ServingError with a message a person can act on."""
  code, details = rpc_error.code(), rpc_error.details()
  if code == grpc.StatusCode.UNAVAILABLE:
    message = f"server not reachable at {server} ({details})"
  elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
    message = f"no answer from {server} within {timeout:g} s"
  else:
    message = details
  return ServingError(code, message)


def format_result(outputs, index, text, digits=4):
  """One output line: label, probabilities, exit layer, uncertainty, text."""
  probs = ", ".join(f"{p:.{digits}f}" for p in outputs["probabilities"][index])
  shown = text if len(text) <= 60 else text[:57] + "..."
  return (f"label={outputs['label'][index]} probabilities=[{probs}] "
          f"exit_layer={outputs['exit_layer'][index]} "
          f"uncertainty={outputs['uncertainty'][index]:.{digits}f} "
          f"text={shown!r}")


if __name__ == "__main__":
  # `python -m fastbert_tf.serving.client`: fastbert_tf/commands/client.py.
  from fastbert_tf.commands import client as client_command  # pylint: disable=g-import-not-at-top
  client_command.run()
