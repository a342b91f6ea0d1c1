"""TF Serving's API protos and TensorProto <-> numpy, without TensorFlow.

The generated modules of `tensorflow-serving-api` import their TensorProto
and SignatureDef stubs from the `tensorflow` package
(`tensorflow.core.framework.tensor_pb2`), and importing any module under
`tensorflow` runs `tensorflow/__init__.py`: the whole of TensorFlow, 5-15 s.
The stubs themselves are plain protobuf, so `load()` imports them with a
bare stand-in for the `tensorflow` package that only carries its path, then
removes the stand-in: a later `import tensorflow` runs as usual and finds
the same stub modules. A process that already imported TensorFlow gets the
ordinary import.

TensorProtos are built and read here with numpy: every input is checked to
carry exactly as many values as its shape says (TensorFlow's own decoder
repeats the last value to fill a short proto, so 2 texts sent as a batch of 5
would come back as 5 answers).
"""

import importlib
import importlib.util
import math
import sys
import threading
import types

import numpy as np

_LOCK = threading.Lock()
_MODULES = ("tensorflow.core.framework.tensor_pb2",
            "tensorflow.core.framework.tensor_shape_pb2",
            "tensorflow.core.framework.types_pb2",
            "tensorflow.core.protobuf.meta_graph_pb2",
            "tensorflow_serving.apis.model_pb2",
            "tensorflow_serving.apis.predict_pb2",
            "tensorflow_serving.apis.get_model_metadata_pb2",
            "tensorflow_serving.apis.prediction_log_pb2",
            "tensorflow_serving.apis.prediction_service_pb2_grpc")


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


def load():
  """Imports the TF Serving API stubs; returns a namespace of modules
  (tensor_pb2, types_pb2, predict_pb2, get_model_metadata_pb2, ...)."""
  with _LOCK:
    shell = None
    if "tensorflow" not in sys.modules:
      spec = importlib.util.find_spec("tensorflow")  # does not run __init__
      shell = types.ModuleType("tensorflow")
      shell.__path__ = list(spec.submodule_search_locations)
      shell.__spec__ = spec
      sys.modules["tensorflow"] = shell
    try:
      modules = {name.rsplit(".", 1)[1]: importlib.import_module(name)
                 for name in _MODULES}
    finally:
      if shell is not None and sys.modules.get("tensorflow") is shell:
        del sys.modules["tensorflow"]
  return types.SimpleNamespace(**modules)


_PB = load()
DT = _PB.types_pb2.DataType
# DataType enum -> (numpy dtype, TensorProto field holding values one by one).
_NUMPY = {
    DT.Value("DT_FLOAT"): (np.float32, "float_val"),
    DT.Value("DT_DOUBLE"): (np.float64, "double_val"),
    DT.Value("DT_INT32"): (np.int32, "int_val"),
    DT.Value("DT_INT16"): (np.int16, "int_val"),
    DT.Value("DT_INT8"): (np.int8, "int_val"),
    DT.Value("DT_UINT8"): (np.uint8, "int_val"),
    DT.Value("DT_INT64"): (np.int64, "int64_val"),
    DT.Value("DT_BOOL"): (np.bool_, "bool_val"),
    DT.Value("DT_STRING"): (object, "string_val"),
}
_ENUM = {np.dtype(t): e for e, (t, _) in _NUMPY.items() if t is not object}


def dtype_name(enum):
  """DataType enum -> "DT_FLOAT", as TF Serving's messages spell it."""
  try:
    return DT.Name(enum)
  except ValueError:
    return f"dtype enum {enum}"


def make_tensor_proto(value, dtype=None):
  """np.ndarray / list / scalar -> TensorProto.

  Args:
    value: the values; str becomes UTF-8 bytes (bytes pass through).
    dtype: a numpy dtype (np.float32 ...) or None = a numpy value's own
      (Python floats and lists of them become float32, ints int32; text
      becomes DT_STRING).

  Returns:
    TensorProto with numbers in `tensor_content` (as tf.make_tensor_proto
    writes them) and strings in `string_val`.
  """
  array = np.asarray(value, dtype=None if dtype is object else dtype)
  proto = _PB.tensor_pb2.TensorProto()
  for size in array.shape:
    proto.tensor_shape.dim.add().size = size
  if dtype is object or array.dtype == object or array.dtype.kind in "US":
    proto.dtype = DT.Value("DT_STRING")
    proto.string_val.extend(
        v if isinstance(v, bytes) else str(v).encode("utf-8")
        for v in array.reshape(-1).tolist())
    return proto
  if dtype is None and not isinstance(value, (np.ndarray, np.generic)):
    # Python numbers and lists: TF's defaults, not numpy's 64 bits.
    array = array.astype({"f": np.float32, "i": np.int32}.get(
        array.dtype.kind, array.dtype), copy=False)
  if array.dtype not in _ENUM:
    raise TypeError(f"cannot send numpy dtype {array.dtype}")
  proto.dtype = _ENUM[array.dtype]
  proto.tensor_content = np.ascontiguousarray(array).astype(
      array.dtype.newbyteorder("<"), copy=False).tobytes()
  return proto


def make_ndarray(proto, name="tensor", max_elements=None):
  """TensorProto -> np.ndarray, strictly.

  Args:
    proto: a TensorProto.
    name: str, the input's name for messages.
    max_elements: int or None, largest element count accepted; checked on
      the declared shape before any value is touched.

  Returns:
    np.ndarray (strings as an object array of bytes).

  Raises:
    ValueError: one line naming `name` and what is wrong: unknown rank,
      negative sizes, too many elements, an unsupported dtype, or a value
      count that is not the shape's element count.
  """
  if proto.tensor_shape.unknown_rank:
    raise ValueError(f"input '{name}' has no shape (unknown_rank)")
  shape = [d.size for d in proto.tensor_shape.dim]
  if any(s < 0 for s in shape):
    raise ValueError(f"input '{name}' has a negative dimension: {shape}")
  count = math.prod(shape)
  if max_elements is not None and count > max_elements:
    raise ValueError(f"input '{name}' has shape {shape} ({count:,} elements);"
                     f" at most {max_elements:,} are accepted")
  if proto.dtype not in _NUMPY:
    raise ValueError(f"input '{name}' has dtype {dtype_name(proto.dtype)}, "
                     "which this server does not decode")
  dtype, field = _NUMPY[proto.dtype]
  if proto.tensor_content and dtype is not object:
    itemsize = np.dtype(dtype).itemsize
    got = len(proto.tensor_content)
    if got != count * itemsize:
      raise ValueError(
          f"input '{name}': shape {shape} needs {count:,} values "
          f"({count * itemsize:,} bytes of tensor_content), the proto carries "
          f"{got:,} bytes")
    array = np.frombuffer(proto.tensor_content,
                          np.dtype(dtype).newbyteorder("<"))
    return array.astype(dtype).reshape(shape)
  values = getattr(proto, field)
  if len(values) != count:
    raise ValueError(f"input '{name}': shape {shape} needs {count:,} values, "
                     f"the proto carries {len(values):,} in {field}")
  if dtype is object:
    array = np.empty(count, dtype=object)
    array[:] = list(values)
    return array.reshape(shape)
  return np.asarray(values, dtype=dtype).reshape(shape)
