"""Errors of the local TF Serving stand-in as gRPC status codes.

tf.errors.OpError codes are the canonical gRPC codes (InvalidArgumentError
is 3, INVALID_ARGUMENT), so a graph assert maps one to one; anything
unexpected is INTERNAL (a bug, logged with its traceback).
"""

import grpc

from fastbert_tf.serving import protos

ServingError = protos.ServingError
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def invalid(message):
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def status_for(exc):
  """(grpc.StatusCode, str message) for an exception raised serving a call."""
  if isinstance(exc, ServingError):
    return exc.code, exc.message
  error_code = getattr(exc, "error_code", None)  # tf.errors.OpError
  if error_code is not None and hasattr(exc, "message"):
    code = _CODES.get(error_code, grpc.StatusCode.UNKNOWN)
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
