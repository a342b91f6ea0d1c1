"""Helpers shared by the local TF Serving stand-in and its client: errors as
gRPC status codes, version discovery, and request validation.

The server checks a request against the SignatureDef before running the
graph, so a bad request is answered with a message naming the input (the
graph's own asserts stay as the second line of defence, for the real
tensorflow_model_server too).
"""

import math
import os

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

# The export contract, as in fastbert_tf/serving/export_module.py (not
# imported: it pulls in Keras, which a client does not need).
SPEED = "speed"
ID_INPUTS = ("token_ids", "segment_ids", "padding_mask")
# No legitimate input comes near this (64 MiB of int32 is 16M elements); it
# stops a TensorProto that claims a huge shape with one broadcast value from
# allocating gigabytes.
MAX_ELEMENTS = 1 << 24
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
  """A request failure with its gRPC status code.

  Attributes:
    code: grpc.StatusCode.
    message: str, what was wrong, for a person to read.
  """

  def __init__(self, code, message):
    super().__init__(message)
    self.code = code
    self.message = message

  def __str__(self):
    return f"{self.code.name}: {self.message}"


def invalid(message):
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def status_for(exc):
  """(grpc.StatusCode, str message) for an exception raised serving a call.

  tf.errors.OpError codes are the canonical gRPC codes (InvalidArgumentError
  is 3, INVALID_ARGUMENT), so they map one to one. Anything else unexpected
  is INTERNAL.
  """
  if isinstance(exc, ServingError):
    return exc.code, exc.message
  if isinstance(exc, tf.errors.OpError):
    code = _CODES.get(exc.error_code, grpc.StatusCode.UNKNOWN)
    return code, clean_tf_message(exc.message)
  return grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"


def clean_tf_message(message):
  """The readable part of a TF runtime error: the assertion text without the
  "Graph execution error" banner, node names and op suffix."""
  keep = []
  for line in str(message).splitlines():
    line = line.split(" [Op:")[0].strip()
    if (not line or line.startswith(("Graph execution error", "Detected at",
                                     "<stack traces", "[[")) or
        line.startswith("File ")):
      continue
    keep.append(line)
  return " ".join(keep) or str(message).strip()


def newest_version(model_base_path):
  """(version, path) of the largest numeric version that holds a SavedModel.

  Hidden `.tmp-*` directories (exports in progress) and numeric directories
  without saved_model.pb (half copied) are skipped, as TF Serving keeps
  serving the previous version when a newer one cannot load.

  Raises:
    FileNotFoundError: no servable version under model_base_path.
  """
  if not tf.io.gfile.isdir(model_base_path):
    raise FileNotFoundError(f"model base path {model_base_path} is not a "
                            "directory")
  versions = sorted((int(d.strip("/")) for d in
                     tf.io.gfile.listdir(model_base_path)
                     if d.strip("/").isdigit()), reverse=True)
  for version in versions:
    path = os.path.join(model_base_path, str(version))
    if any(tf.io.gfile.exists(os.path.join(path, f))
           for f in ("saved_model.pb", "saved_model.pbtxt")):
      return version, path
  raise FileNotFoundError(
      f"no version under {model_base_path}: expected <base>/<N>/saved_model.pb"
      " with N a number")


# The model reads at most max_seq_length (typically 128) tokens of a text;
# anything this long is a client mistake (a whole document, a file sent by
# accident), reported rather than silently truncated. --max_text_chars raises it.
DEFAULT_MAX_TEXT_CHARS = 10_000


def validate_inputs(signature_name, signature_def, inputs,
                    max_text_chars=DEFAULT_MAX_TEXT_CHARS):
  """Checks request tensors against a SignatureDef and decodes them.

  Args:
    signature_name: str, for messages.
    signature_def: SignatureDef proto of the signature asked for.
    inputs: mapping str -> TensorProto (PredictRequest.inputs).
    max_text_chars: int, longest text accepted, in characters.

  Returns:
    dict str -> np.ndarray, one per signature input (strings as bytes).

  Raises:
    ServingError: INVALID_ARGUMENT naming the input and what was wrong.
  """
  wanted, got = set(signature_def.inputs), set(inputs)
  if wanted != got:
    problems = [f"{what} {sorted(names)}" for what, names in (
        ("missing", wanted - got), ("unexpected", got - wanted)) if names]
    raise invalid(f"signature '{signature_name}' takes inputs "
                  f"{sorted(wanted)}: {', '.join(problems)}")
  arrays = {name: _to_array(name, signature_def.inputs[name], inputs[name])
            for name in sorted(wanted)}
  batched = {n: a.shape[0] for n, a in arrays.items() if a.ndim}
  if len(set(batched.values())) > 1:
    raise invalid(f"inputs disagree on the batch size: {batched}")
  if 0 in batched.values():
    raise invalid(f"empty batch: inputs {sorted(batched)} hold no examples; "
                  "send at least one")
  for name, array in arrays.items():
    _check_values(name, array, max_text_chars)
  return arrays


def _to_array(name, info, proto):
  """One TensorProto -> np.ndarray, checked for dtype, rank and size."""
  if proto.dtype != info.dtype:
    raise invalid(f"input '{name}' must be {_dtype_name(info.dtype)}, got "
                  f"{_dtype_name(proto.dtype)}")
  if proto.tensor_shape.unknown_rank:
    raise invalid(f"input '{name}' has no shape")
  shape = [d.size for d in proto.tensor_shape.dim]
  want = [d.size for d in info.tensor_shape.dim]
  shape_text = f"[{', '.join(str(d) for d in want)}]".replace("-1", "None")
  if len(shape) != len(want) or any(
      w not in (-1, s) for w, s in zip(want, shape)):
    raise invalid(f"input '{name}' must have shape {shape_text} (rank "
                  f"{len(want)}), got {shape}")
  if any(s < 0 for s in shape) or math.prod(shape) > MAX_ELEMENTS:
    raise invalid(f"input '{name}' has shape {shape}; at most {MAX_ELEMENTS}"
                  " elements are accepted")
  try:
    return tf.make_ndarray(proto)
  except (ValueError, TypeError) as e:
    raise invalid(f"input '{name}' is not a valid TensorProto: {e}") from None


def _check_values(name, array, max_text_chars):
  """Value checks of the FastBERT contract that are cheap to do up front."""
  if name == SPEED:
    speed = float(array)
    if not 0.0 <= speed <= 1.0:  # False for NaN too
      raise invalid(f"speed must be a number in [0, 1], got {speed}")
  elif array.dtype == object:
    for i, value in enumerate(array.reshape(-1)):
      try:
        text = value.decode("utf-8")
      except UnicodeDecodeError as e:
        raise invalid(f"input '{name}'[{i}] is not valid UTF-8 ({e.reason} "
                      f"at byte {e.start})") from None
      if len(text) > max_text_chars:
        raise invalid(f"input '{name}'[{i}] has {len(text):,} characters; "
                      f"this server accepts at most {max_text_chars:,} "
                      "(--max_text_chars). The model reads only its first "
                      "max_seq_length tokens: send a prefix.")
  elif name in ID_INPUTS and array.ndim == 2 and array.shape[0] and (
      not array.shape[1]):
    raise invalid(f"input '{name}' has 0 columns; every sequence needs at "
                  "least its [CLS] token")


def _dtype_name(enum):
  """DataType enum -> "DT_FLOAT", as TF Serving's messages spell it."""
  try:
    return types_pb2.DataType.Name(enum)
  except ValueError:
    return f"dtype enum {enum}"


def to_tensor_proto(value, dtype):
  """np.ndarray / list / scalar -> TensorProto of the given tf.DType.

  Strings are sent as UTF-8 bytes (bytes pass through unchanged).
  """
  if dtype == tf.string:
    value = np.asarray(value, dtype=object)
    value = np.vectorize(
        lambda s: s if isinstance(s, bytes) else str(s).encode("utf-8"),
        otypes=[object])(value) if value.size else value
  return tf.make_tensor_proto(value, dtype=dtype)


def from_tensor_protos(outputs):
  """PredictResponse.outputs -> dict str -> np.ndarray."""
  return {name: tf.make_ndarray(proto) for name, proto in outputs.items()}
