"""Request checks of the local server: the SignatureDef contract, the
serving limits, and the input rules training applies (the text rule:
a text the model's tokenizer finds empty is refused, data/tokenizer.py).

Everything here runs before any TensorFlow work, on the declared shapes
first and the values second, so an oversized or malformed request costs
almost nothing. The graph's own asserts (export/serving_module.py) stay as the second
line of defence, for the real tensorflow_model_server too.
"""

import dataclasses
import math

import grpc
import numpy as np

from fastbert_tf.data import rows
from fastbert_tf.serving import protos

SPEED = "speed"
TEXT_INPUTS = ("text", "text_b")
ID_INPUTS = ("token_ids", "segment_ids", "padding_mask")
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def invalid(message):
  return protos.ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


# The server's flag of each limit (max_sequence_columns has none).
_LIMIT_FLAGS = {"max_texts": "max_texts_per_request"}


@dataclasses.dataclass(frozen=True)
class RequestLimits:
  """What one request may ask for (export/README.md, "Serving limits").

  Attributes:
    max_texts: int, most examples (texts, or rows of ids) per request. The
      model's activations grow with it: 10,000 texts took the quickstart
      model's server from 1.9 to 6.0 GB.
    max_text_chars: int, longest text (characters): the model reads only
      its first max_seq_length tokens, so more is a client mistake.
    max_request_chars: int, characters over all texts of a request
      (text and text_b together): bounds tokenizer work and memory.
    max_sequence_columns: int, widest id input; above any BERT's position
      table (the graph then checks the model's own max_sequence_length).
  """
  max_texts: int = 256
  max_text_chars: int = 10_000
  max_request_chars: int = 200_000
  max_sequence_columns: int = 2048

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        flag = _LIMIT_FLAGS.get(field.name, field.name)
        raise ValueError(f"--{flag}={value}: a limit below 1 refuses every "
                         f"request; expected an integer >= 1")


def validate_inputs(signature_name, signature_def, inputs, limits,
                    empty_texts):
  """Checks request tensors against a SignatureDef and the limits.

  Args:
    signature_name: str, for messages.
    signature_def: SignatureDef proto of the signature asked for.
    inputs: mapping str -> TensorProto (PredictRequest.inputs).
    limits: RequestLimits.
    empty_texts: the text rule of the served model: callable(list of n
      str) -> bool [n], True for a text its tokenizer finds empty
      (Servable.empty_texts).

  Returns:
    dict str -> np.ndarray, one per signature input (strings as bytes;
    `speed` float32, a scalar or [batch]).

  Raises:
    ServingError: INVALID_ARGUMENT naming the input and what was wrong, or
      RESOURCE_EXHAUSTED when the request is over a limit.
  """
  wanted, got = set(signature_def.inputs), set(inputs)
  if wanted != got:
    problems = [f"{what} {sorted(names)}" for what, names in (
        ("missing", wanted - got), ("unexpected", got - wanted)) if names]
    raise invalid(f"signature '{signature_name}' takes inputs "
                  f"{sorted(wanted)}: {', '.join(problems)}")
  shapes = {name: _check_declared(name, signature_def.inputs[name],
                                  inputs[name], limits)
            for name in sorted(wanted)}
  batched = {n: s[0] for n, s in shapes.items() if n != SPEED and s}
  if len(set(batched.values())) > 1:
    raise invalid(f"inputs disagree on the batch size: {batched}")
  batch = next(iter(batched.values()), 0)
  if batch == 0:
    raise invalid(f"empty batch: inputs {sorted(batched)} hold no examples; "
                  "send at least one")
  if batch > limits.max_texts:
    raise protos.ServingError(
        RESOURCE_EXHAUSTED, f"{batch:,} examples in one request; this server "
        f"accepts at most {limits.max_texts:,} (--max_texts_per_request): "
        "split the batch")
  _check_speed_shape(shapes[SPEED], batch)
  arrays = {}
  for name in sorted(wanted):
    try:
      arrays[name] = protos.make_ndarray(inputs[name], name)
    except ValueError as e:
      raise invalid(str(e)) from None
  _check_speed_values(arrays[SPEED])
  _check_texts(arrays, limits, empty_texts)
  if "padding_mask" in arrays:
    _check_padding_mask(arrays["padding_mask"])
  return arrays


def describe(inputs):
  """{"batch", "speed"} of a request as far as its headers tell, for the
  access log of a request that may fail validation (never raises)."""
  note = {}
  for name, proto in inputs.items():
    dims = proto.tensor_shape.dim
    if name != SPEED and dims and "batch" not in note:
      note["batch"] = dims[0].size
  if SPEED in inputs:  # (indexing a proto map would add the key)
    try:
      speed = protos.make_ndarray(inputs[SPEED], SPEED, max_elements=1 << 16)
      note["speed"] = speed.astype(np.float32)
    except (ValueError, TypeError):
      pass
  return note


def _check_declared(name, info, proto, limits):
  """Dtype, rank and size from the proto's header; returns its shape."""
  if proto.dtype != info.dtype:
    raise invalid(f"input '{name}' must be {protos.dtype_name(info.dtype)}, "
                  f"got {protos.dtype_name(proto.dtype)}")
  if proto.tensor_shape.unknown_rank:
    raise invalid(f"input '{name}' has no shape (unknown_rank)")
  shape = [d.size for d in proto.tensor_shape.dim]
  if any(s < 0 for s in shape):
    raise invalid(f"input '{name}' has a negative dimension: {shape}")
  if not info.tensor_shape.unknown_rank:  # speed: any rank, checked below
    want = [d.size for d in info.tensor_shape.dim]
    text = f"[{', '.join(str(d) for d in want)}]".replace("-1", "None")
    if len(shape) != len(want) or any(
        w not in (-1, s) for w, s in zip(want, shape)):
      raise invalid(f"input '{name}' must have shape {text} (rank "
                    f"{len(want)}), got {shape}")
  if name in ID_INPUTS and len(shape) == 2:
    if shape[0] and not shape[1]:
      raise invalid(f"input '{name}' has 0 columns; every sequence needs at "
                    "least its [CLS] token")
    if shape[1] > limits.max_sequence_columns:
      raise invalid(f"input '{name}' has {shape[1]:,} columns; at most "
                    f"{limits.max_sequence_columns:,} are accepted (and the "
                    "model's max_sequence_length)")
  if math.prod(shape) > limits.max_texts * limits.max_sequence_columns:
    raise protos.ServingError(
        RESOURCE_EXHAUSTED, f"input '{name}' has shape {shape}; this server "
        f"accepts at most {limits.max_texts:,} examples per request")
  return shape


def _check_speed_shape(shape, batch):
  if len(shape) > 1 or (shape and shape[0] not in (1, batch)):
    raise invalid(f"input 'speed' must be a float32 scalar or float32 "
                  f"[batch] (one per example, batch {batch}), got shape "
                  f"{shape}")


def _check_speed_values(speed):
  bad = ~((speed >= 0.0) & (speed <= 1.0))  # True for NaN too
  if bad.any():
    index = int(np.flatnonzero(bad.reshape(-1))[0])
    where = f"[{index}]" if speed.ndim else ""
    raise invalid(f"speed{where} must be a number in [0, 1], got "
                  f"{float(speed.reshape(-1)[index])}")


def _check_texts(arrays, limits, empty_texts):
  """UTF-8, lengths, and not empty (the text rule, training's)."""
  total = 0
  for name in TEXT_INPUTS:
    if name not in arrays:
      continue
    texts = []
    for i, value in enumerate(arrays[name].reshape(-1)):
      # Bytes bound characters from above: cheap before decoding.
      if len(value) > 4 * limits.max_text_chars + 4:
        raise invalid(_too_long(name, i, f"{len(value):,} bytes", limits))
      try:
        text = value.decode("utf-8")
      except UnicodeDecodeError as e:
        raise invalid(f"input '{name}'[{i}] is not valid UTF-8 ({e.reason} "
                      f"at byte {e.start})") from None
      if len(text) > limits.max_text_chars:
        raise invalid(_too_long(name, i, f"{len(text):,} characters",
                                limits))
      texts.append(text)
      total += len(text)
    if total > limits.max_request_chars:
      break  # the tokenizer is not run over an oversized request
    empty = np.flatnonzero(np.asarray(empty_texts(texts), bool))
    if empty.size:
      i = int(empty[0])
      raise invalid(rows.empty_text_message(f"input '{name}'[{i}]",
                                            texts[i]))
  if total > limits.max_request_chars:
    raise protos.ServingError(
        RESOURCE_EXHAUSTED, f"the request's texts hold {total:,} characters;"
        f" this server accepts at most {limits.max_request_chars:,} per "
        "request (--max_request_chars): split the batch")


def _too_long(name, index, size, limits):
  return (f"input '{name}'[{index}] has {size}; this server accepts at most "
          f"{limits.max_text_chars:,} characters (--max_text_chars). The "
          "model reads only its first max_seq_length tokens: send a prefix.")


def _check_padding_mask(mask):
  empty = np.flatnonzero(~(mask != 0).any(axis=1))
  if empty.size:
    raise invalid(f"input 'padding_mask' row {int(empty[0])} is all zeros; "
                  "every row needs at least its [CLS] position marked 1")
