"""The kinds of bad request bench/serving_faults.py sends, and the context
they run in (a local server subprocess and in-process reference answers).

Each kind is a function context -> (verdict, detail), see serving_faults.
"""

import os
import re
import select
import signal
import subprocess
import sys

import grpc
import numpy as np

from fastbert_tf.serving import protos

PB = protos.load()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "fastbert"
TEXTS = ["a b z", "c d", "好 书"]
DEADLINE = 60.0
OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
CRASHES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
           grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def export_tiny(directory, single_text_buckets=None):
  """Exports the test_tiny model (sharpened, so exits vary) as version 1,
  with the one-text XLA path when single_text_buckets is given."""
  from fastbert_tf import testing  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
  base = os.path.join(directory, "exports")
  exporter.export_saved_model(
      testing.tiny_model(seed=3, sharpen=8.0, dropout=0.0),
      TextEncoder(testing.TINY_VOCAB, 16), base,
      single_text_buckets=single_text_buckets)
  return base


class ServingContext:
  """A server subprocess on `base` and helpers to call it raw."""

  def __init__(self, base, access_log):
    self.base = base
    self.access_log = access_log
    self._proc = None
    self._channel = None
    self._signatures = None

  def __enter__(self):
    self._proc = subprocess.Popen(
        [sys.executable, "-m", "fastbert_tf.serving.server",
         f"--model_base_path={self.base}", f"--model_name={MODEL}",
         "--port=0", "--version_labels=stable=1",
         f"--access_log={self.access_log}"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    ready, _, _ = select.select([self._proc.stdout], [], [], 600)
    line = self._proc.stdout.readline() if ready else ""
    match = re.fullmatch(r"serving \S+ version (\d+) at (\S+)\n", line)
    if not match:
      self._proc.kill()
      raise RuntimeError(f"the server did not start: {line!r}")
    self.version = int(match.group(1))
    self._channel = grpc.insecure_channel(match.group(2), options=[
        ("grpc.max_send_message_length", 1 << 30)])
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_text  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
    self._tf = tf
    loaded = tf.saved_model.load(os.path.join(self.base, str(self.version)))
    self._signatures = loaded.signatures
    self._loaded = loaded
    return self

  def __exit__(self, *exc_info):
    self._channel.close()
    if self._proc.poll() is None:
      self._proc.send_signal(signal.SIGTERM)
      try:
        self._proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        self._proc.kill()

  def call(self, method, data, timeout=DEADLINE):
    """Raw bytes in -> (grpc.StatusCode, details, response bytes)."""
    stub = self._channel.unary_unary(
        f"/tensorflow.serving.PredictionService/{method}")
    try:
      return OK, "", stub(data, timeout=timeout)
    except grpc.RpcError as e:
      return e.code(), e.details() or "", None

  def reference(self, signature, inputs):
    """The in-process answer: {output: np.ndarray}."""
    tf = self._tf
    out = self._signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}

  def alive(self):
    return self._proc.poll() is None

  def healthy(self):
    inputs = {"text": np.array(TEXTS, object), "speed": np.float32(0.5)}
    verdict, _ = expect_answer(self, request(inputs), "serving_default",
                               inputs)
    return verdict == "correct"


def request(inputs, signature="serving_default", name=MODEL, version=None,
            label=None, raw=None):
  """A serialized PredictRequest; inputs are arrays or TensorProtos."""
  req = PB.predict_pb2.PredictRequest()
  req.model_spec.name = name
  req.model_spec.signature_name = signature
  if version is not None:
    req.model_spec.version.value = version
  if label is not None:
    req.model_spec.version_label = label
  for key, value in inputs.items():
    if not isinstance(value, PB.tensor_pb2.TensorProto):
      value = protos.make_tensor_proto(value)
    req.inputs[key].CopyFrom(value)
  if raw is not None:
    raw(req)
  return req.SerializeToString()


def expect_error(context, data, codes, pattern, method="Predict"):
  """A bad request: clear if one of `codes` with a message matching."""
  code, details, _ = context.call(method, data)
  if code == OK:
    return "silent", "answered OK"
  if code in CRASHES or not context.alive():
    return "crash", f"{code.name}: {details}"
  if code in codes and re.search(pattern, details):
    return "clear", f"{code.name}: {details}"
  return "unclear", f"{code.name}: {details} (wanted {pattern!r})"


def expect_answer(context, data, signature, inputs):
  """A valid edge case: correct if equal to the in-process answer."""
  code, details, body = context.call("Predict", data)
  if code != OK:
    return ("crash" if code in CRASHES else "unclear"), (
        f"{code.name}: {details}")
  response = PB.predict_pb2.PredictResponse.FromString(body)
  got = {k: protos.make_ndarray(v, k) for k, v in response.outputs.items()}
  want = context.reference(signature, inputs)
  same = (sorted(got) == sorted(want) and
          all(np.array_equal(got[k], want[k]) for k in ("label", "exit_layer"))
          and np.allclose(got["probabilities"], want["probabilities"],
                          atol=1e-6))
  return ("correct", "equal to the SavedModel") if same else (
      "silent", "differs from the SavedModel")


def serving_kinds():
  """Every serving kind, in the order they run."""
  from bench import serving_fault_table  # pylint: disable=g-import-not-at-top
  return serving_fault_table.KINDS
