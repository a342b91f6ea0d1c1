"""A local stand-in for tensorflow_model_server: TF Serving's gRPC
PredictionService (Predict, GetModelMetadata) over an export base directory.

  python -m fastbert_tf.serving.server --model_base_path=exports/quickstart \
      --model_name=fastbert --port=8500

The real server cannot be installed on these machines (TF_NOTES trap 6);
this one speaks the same protocol so clients, tests and benchmarks can run
against it. It serves the newest version found at start-up, binds 127.0.0.1
unless --host says otherwise, and answers a bad request with
INVALID_ARGUMENT / NOT_FOUND and a message naming the problem, then keeps
serving. Classify, Regress and MultiInference answer UNIMPLEMENTED.

In-process use (tests, benchmarks):

  with LocalServer(base, "fastbert") as server:   # ephemeral port
    client = FastBertClient(server.address, "fastbert")
"""

import os
import signal
import threading
from concurrent import futures

import grpc
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops; trap 5)
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from fastbert_tf.serving import grpc_utils

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
NOT_FOUND = grpc.StatusCode.NOT_FOUND


class Servable:
  """The newest version under a model base path, loaded.

  Attributes:
    name: str, the model name requests must ask for.
    version: int.
    path: str, `<model_base_path>/<version>`.
    loaded: the tf.saved_model.load object (for in-process comparisons).
    signature_defs: {str: SignatureDef}, as saved (GetModelMetadata, checks).
  """

  def __init__(self, model_base_path, name,
               max_text_chars=grpc_utils.DEFAULT_MAX_TEXT_CHARS):
    self.name = name
    self.max_text_chars = max_text_chars
    self.version, self.path = grpc_utils.newest_version(model_base_path)
    self.loaded = tf.saved_model.load(self.path)
    self.signature_defs = dict(_read_signature_defs(self.path))
    self._functions = dict(self.loaded.signatures)

  def check_spec(self, model_spec):
    """Raises NOT_FOUND unless model_spec names this model (and version)."""
    if model_spec.name != self.name:
      raise grpc_utils.ServingError(
          NOT_FOUND, f"Servable not found for request: model "
          f"'{model_spec.name}' (this server serves '{self.name}')")
    if model_spec.HasField("version") and (
        model_spec.version.value != self.version):
      raise grpc_utils.ServingError(
          NOT_FOUND, f"Servable not found for request: Specific({self.name}, "
          f"{model_spec.version.value}); loaded version is {self.version}")
    if model_spec.version_label:
      raise grpc_utils.invalid("version labels are not supported; ask for "
                               f"a version number ({self.version})")

  def predict(self, request):
    """PredictRequest -> PredictResponse; raises ServingError / TF errors."""
    self.check_spec(request.model_spec)
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if name not in self._functions:
      raise grpc_utils.ServingError(
          NOT_FOUND, f"Serving signature key \"{name}\" not found; the model "
          f"has {sorted(self._functions)}")
    signature_def = self.signature_defs[name]
    outputs = list(request.output_filter) or sorted(signature_def.outputs)
    unknown = sorted(set(outputs) - set(signature_def.outputs))
    if unknown:
      raise grpc_utils.invalid(f"output_filter names {unknown}, not outputs "
                               f"of '{name}' {sorted(signature_def.outputs)}")
    arrays = grpc_utils.validate_inputs(name, signature_def, request.inputs,
                                        self.max_text_chars)
    results = self._functions[name](
        **{k: tf.constant(v) for k, v in arrays.items()})
    response = predict_pb2.PredictResponse()
    self._fill_spec(response.model_spec, name)
    for key in outputs:
      response.outputs[key].CopyFrom(
          tf.make_tensor_proto(results[key].numpy()))
    return response

  def metadata(self, request):
    """GetModelMetadataRequest -> response with the SignatureDefMap, as TF
    Serving packs it (an Any under the key "signature_def")."""
    self.check_spec(request.model_spec)
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
      raise grpc_utils.invalid(
          f"metadata_field must be ['signature_def'], got {fields}")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    self._fill_spec(response.model_spec)
    response.metadata["signature_def"].Pack(
        get_model_metadata_pb2.SignatureDefMap(
            signature_def=self.signature_defs))
    return response

  def warmup(self):
    """Replays assets.extra warmup requests, as TF Serving does at load, so
    the first real request does not pay for tracing. Returns their count."""
    path = os.path.join(self.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
      return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
      log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
      request = log.predict_log.request
      request.model_spec.name = self.name
      request.model_spec.ClearField("version")
      self.predict(request)
      count += 1
    return count

  def _fill_spec(self, spec, signature_name=None):
    spec.name = self.name
    spec.version.value = self.version
    if signature_name:
      spec.signature_name = signature_name


def _read_signature_defs(path):
  """The "serve" MetaGraph's SignatureDefs from saved_model.pb."""
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    if "serve" in meta_graph.meta_info_def.tags:
      return meta_graph.signature_def
  raise ValueError(f"{path} has no MetaGraph tagged 'serve'")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's PredictionService over one Servable."""

  def __init__(self, servable):
    self.servable = servable

  def Predict(self, request, context):  # pylint: disable=invalid-name
    return _answer(context, "Predict", self.servable.predict, request)

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return _answer(context, "GetModelMetadata", self.servable.metadata,
                   request)

  def Classify(self, request, context):  # pylint: disable=invalid-name
    _unimplemented(context, "Classify")

  def Regress(self, request, context):  # pylint: disable=invalid-name
    _unimplemented(context, "Regress")

  def MultiInference(self, request, context):  # pylint: disable=invalid-name
    _unimplemented(context, "MultiInference")


def _answer(context, method, handler, request):
  """Runs handler(request); an exception becomes a status, logged once."""
  try:
    return handler(request)
  except Exception as e:  # pylint: disable=broad-except
    code, message = grpc_utils.status_for(e)
    if code == grpc.StatusCode.INTERNAL:
      logging.exception("%s failed", method)  # a bug: keep the traceback
    else:
      logging.warning("%s %s: %s", method, code.name, message)
  context.abort(code, message)


def _unimplemented(context, method):
  context.abort(grpc.StatusCode.UNIMPLEMENTED,
                f"{method} is not implemented; use Predict (signatures "
                "serving_default, predict_text, predict_ids)")


class LocalServer:
  """The gRPC server in this process, as a context manager.

  Args:
    model_base_path: str, directory of numeric versions.
    model_name: str, the name requests must use.
    port: int, 0 = an ephemeral port (read `.port` / `.address`).
    host: str, interface to bind; 127.0.0.1 keeps it off the network.
    max_workers: int, request threads.
    max_message_bytes: int, largest request accepted (larger ones get
      RESOURCE_EXHAUSTED from gRPC); bounds the work one request can ask for.
    warmup: bool, replay the export's warmup requests before serving.
    max_text_chars: int, longest text accepted (longer: INVALID_ARGUMENT).
  """

  def __init__(self, model_base_path, model_name, port=0, host="127.0.0.1",
               max_workers=4, max_message_bytes=64 << 20, warmup=True,
               max_text_chars=grpc_utils.DEFAULT_MAX_TEXT_CHARS):
    self.servable = Servable(model_base_path, model_name, max_text_chars)
    if warmup:
      self.servable.warmup()
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               # Without this a second server could share a busy port.
               ("grpc.so_reuseport", 0)]
    self._server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(self.servable), self._server)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
      self.port = self._server.add_insecure_port(bind)
    except RuntimeError as e:
      raise OSError(f"cannot listen on {bind} (port in use?): {e}") from None
    self.host = host
    self.address = bind.rsplit(":", 1)[0] + f":{self.port}"

  def start(self):
    self._server.start()
    logging.info("Serving model '%s' version %d from %s at %s",
                 self.servable.name, self.servable.version,
                 self.servable.path, self.address)
    return self

  def stop(self, grace=None):
    """Stops accepting calls; in-flight ones get `grace` seconds."""
    self._server.stop(grace).wait()

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc_info):
    self.stop(grace=0)


def define_flags():
  """The CLI's absl flags (only the entry point defines them)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("model_base_path", None,
                      "Export base directory: <base>/<version>/saved_model.pb.")
  flags.DEFINE_string("model_name", "default",
                      "Model name clients put in ModelSpec.name.")
  flags.DEFINE_integer("port", 8500, "gRPC port (0 = pick a free one).")
  flags.DEFINE_string("host", "127.0.0.1",
                      "Interface to bind; 0.0.0.0 exposes the server.")
  flags.DEFINE_integer("max_workers", 4, "Request threads.")
  flags.DEFINE_integer("max_message_mb", 64, "Largest request, MiB.")
  flags.DEFINE_integer("max_text_chars", grpc_utils.DEFAULT_MAX_TEXT_CHARS,
                       "Longest text accepted, in characters.")
  flags.mark_flag_as_required("model_base_path")


def main(argv):
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  flag = flags.FLAGS
  try:
    server = LocalServer(flag.model_base_path, flag.model_name, flag.port,
                         flag.host, flag.max_workers,
                         flag.max_message_mb << 20,
                         max_text_chars=flag.max_text_chars)
  except (FileNotFoundError, OSError) as e:
    raise SystemExit(f"error: {e}") from None
  stop = threading.Event()
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, frame: stop.set())
  server.start()
  # A parseable line on stdout, so scripts using --port=0 learn the port.
  print(f"serving {server.servable.name} version {server.servable.version} "
        f"at {server.address}", flush=True)
  while not stop.wait(1.0):  # wake up now and then: signals land in Python
    pass
  logging.info("Shutting down (up to 5 s for in-flight requests)")
  server.stop(grace=5.0)


if __name__ == "__main__":
  from absl import app as absl_app  # pylint: disable=g-import-not-at-top
  define_flags()
  absl_app.run(main)
