"""A local stand-in for tensorflow_model_server: TF Serving's gRPC
PredictionService (Predict, GetModelMetadata) over a model base path.

  fastbert-serve --model_base_path=exports/quickstart \
      --model_name=fastbert --port=8500
  (or python -m fastbert_tf.serving.server; fastbert_tf/commands/serve.py)

The real server cannot be installed on these machines (TF_NOTES trap 6);
this one speaks the same protocol and manages versions the same way
(versions.py: polling, background loads with warmup, latest-N, labels).
Requests are checked before any work (validation.py: contract, limits,
training's input rules), optionally merged into batches (batching.py), and
logged one line each (access_log.py). Classify, Regress and MultiInference
answer UNIMPLEMENTED. Binds 127.0.0.1 unless --host says otherwise.

In-process use (tests, benchmarks):

  with LocalServer(base, "fastbert") as server:   # ephemeral port
    client = FastBertClient(server.address, "fastbert")
"""

import numbers
import threading
import time
from concurrent import futures

import grpc
from absl import logging
from google.protobuf import message as proto_message

from fastbert_tf.errors import ConfigError
from fastbert_tf.serving import access_log as access_log_lib
from fastbert_tf.serving import grpc_utils
from fastbert_tf.serving import protos
from fastbert_tf.serving import servable as servable_lib
from fastbert_tf.serving import validation
from fastbert_tf.serving import versions as versions_lib

SERVICE = "tensorflow.serving.PredictionService"
_PB = protos.load()


class PredictionService:
  """TF Serving's PredictionService over a VersionManager.

  Requests arrive as bytes (no deserializer), so a malformed message is
  INVALID_ARGUMENT here rather than gRPC's INTERNAL.
  """

  def __init__(self, manager, limits, access_log):
    self.manager = manager
    self.limits = limits
    self.access_log = access_log
    self.in_flight = 0
    self.served = 0
    self._count_lock = threading.Lock()

  def handler(self):
    """The grpc.GenericRpcHandler serving every method of the service."""
    serialize = lambda m: m.SerializeToString()
    methods = {
        "Predict": (self.predict, _PB.predict_pb2.PredictRequest),
        "GetModelMetadata": (self.metadata,
                             _PB.get_model_metadata_pb2.GetModelMetadataRequest),
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            self._wrap(name, fn, cls), response_serializer=serialize)
        for name, (fn, cls) in methods.items()}
    for name in ("Classify", "Regress", "MultiInference"):
      handlers[name] = grpc.unary_unary_rpc_method_handler(
          self._unimplemented(name))
    return grpc.method_handlers_generic_handler(SERVICE, handlers)

  def predict(self, request, note):
    servable = self.manager.resolve(request.model_spec)
    note["version"] = servable.version
    return servable.predict(request, self.limits, note)

  def metadata(self, request, note):
    servable = self.manager.resolve(request.model_spec)
    note["version"] = servable.version
    return servable.metadata(request)

  def _wrap(self, method, fn, request_class):
    def call(data, context):
      with self._count_lock:
        self.in_flight += 1
      try:
        return serve(data, context)
      finally:
        with self._count_lock:
          self.in_flight -= 1
          self.served += 1

    def serve(data, context):
      start = time.perf_counter()
      note = {}
      code, message, response = grpc.StatusCode.OK, None, None
      try:
        try:
          request = request_class.FromString(data)
        except proto_message.DecodeError as e:
          raise grpc_utils.invalid(f"request is not a valid {method} "
                                   f"message: {e}") from None
        note["model"] = request.model_spec.name
        response = fn(request, note)
      except Exception as e:  # pylint: disable=broad-except
        code, message = grpc_utils.status_for(e)
        if code == grpc.StatusCode.INTERNAL:
          logging.exception("%s failed", method)  # a bug: keep the traceback
      self.access_log.write(
          peer=context.peer(), method=method, model=note.get("model"),
          version=note.get("version"), signature=note.get("signature"),
          batch=note.get("batch"), speed=note.get("speed"),
          latency_ms=1e3 * (time.perf_counter() - start), status=code.name,
          error=message)
      if code != grpc.StatusCode.OK:
        context.abort(code, message)
      return response
    return call

  def _unimplemented(self, method):
    def call(data, context):
      del data
      self.access_log.write(peer=context.peer(), method=method, model=None,
                            version=None, signature=None, batch=None,
                            speed=None, latency_ms=0.0, status="UNIMPLEMENTED")
      context.abort(grpc.StatusCode.UNIMPLEMENTED,
                    f"{method} is not implemented; use Predict (signatures "
                    "serving_default, predict_text, predict_ids)")
    return call


# gRPC reads message limits as an int32 of bytes; a port is 16 bits; an
# idle poll or a batch wait longer than these is a typo, not a setting.
MAX_MESSAGE_BYTES = 2**31 - 1
MAX_POLL_WAIT_SECONDS = 365 * 86_400
MAX_BATCH_TIMEOUT_MICROS = 60_000_000


def _refuse(flag, value, what, expected):
  return ConfigError(f"--{flag}={value}: {what}; expected {expected}")


def _integer(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_options(port, max_workers, max_message_bytes, poll_wait_seconds,
                  batching_options=None):
  """The server's numeric options in their ranges, before any model loads.

  Raises:
    ConfigError: `--flag=value: what is wrong; expected what`, with the
      command line's flag names.
  """
  if not _integer(port) or not 0 <= port <= 65535:
    raise _refuse("port", port, "not a TCP port",
                  "an integer in [0, 65535] (0 = pick a free one)")
  if not _integer(max_workers) or max_workers < 1:
    raise _refuse("max_workers", max_workers, "no thread would answer",
                  "an integer >= 1")
  if not _integer(max_message_bytes) or not (
      1 <= max_message_bytes <= MAX_MESSAGE_BYTES):
    raise _refuse("max_message_mb", f"{max_message_bytes / 2**20:g}",
                  "not a message size gRPC takes",
                  f"1 to {MAX_MESSAGE_BYTES >> 20} MiB")
  if isinstance(poll_wait_seconds, bool) or not isinstance(
      poll_wait_seconds, numbers.Real) or not (
          0 <= poll_wait_seconds <= MAX_POLL_WAIT_SECONDS):  # NaN too
    raise _refuse("file_system_poll_wait_seconds", poll_wait_seconds,
                  "not a polling period",
                  f"seconds in [0, {MAX_POLL_WAIT_SECONDS:,}] (0 = look "
                  "once at start-up)")
  if batching_options is not None:
    if batching_options.num_batch_threads > max_workers:
      raise _refuse("num_batch_threads", batching_options.num_batch_threads,
                    f"more merged runs than the {max_workers} request "
                    "threads could fill",
                    f"at most --max_workers={max_workers}")
    if batching_options.batch_timeout_micros > MAX_BATCH_TIMEOUT_MICROS:
      raise _refuse("batch_timeout_micros",
                    batching_options.batch_timeout_micros,
                    "requests would wait that long for a batch to fill",
                    f"at most {MAX_BATCH_TIMEOUT_MICROS:,} (a minute)")


class LocalServer:
  """The gRPC server in this process, as a context manager.

  Args:
    model_base_path: str, directory of numeric versions.
    model_name: str, the name requests must use.
    port: int, 0 = an ephemeral port (read `.port` / `.address`).
    host: str, interface to bind; 127.0.0.1 keeps it off the network.
    max_workers: int, request threads (with batching, enough to fill a
      batch).
    max_message_bytes: int, largest request gRPC accepts (larger ones get
      RESOURCE_EXHAUSTED before anything is decoded).
    warmup: bool, replay each version's warmup requests before serving it.
    limits: validation.RequestLimits.
    poll_wait_seconds: float, base path polling period (0 = start-up only).
    max_versions: int, newest good versions kept loaded.
    version_labels: {str: int}.
    batching_options: batching.BatchingOptions or None.
    access_log: str or None, access log file ("-" stderr, None absl log).
  """

  def __init__(self, model_base_path, model_name, port=0, host="127.0.0.1",
               max_workers=16, max_message_bytes=16 << 20, warmup=True,
               limits=validation.RequestLimits(), poll_wait_seconds=1.0,
               max_versions=1, version_labels=None, batching_options=None,
               access_log=None):
    check_options(port, max_workers, max_message_bytes, poll_wait_seconds,
                  batching_options)  # before a version loads
    self.limits = limits

    def load(version, path):
      servable = servable_lib.Servable(model_name, version, path,
                                       batching_options)
      if warmup:
        servable.warmup(limits)
      return servable

    self.manager = versions_lib.VersionManager(
        model_base_path, model_name, load, poll_wait_seconds, max_versions,
        version_labels).start()
    self.access_log = access_log_lib.AccessLog(access_log)
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               # Without this a second server could share a busy port.
               ("grpc.so_reuseport", 0)]
    self._server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    self.service = PredictionService(self.manager, limits, self.access_log)
    self._server.add_generic_rpc_handlers((self.service.handler(),))
    self._stop = threading.Event()
    self._trimmer = threading.Thread(target=self._trim_when_idle,
                                     daemon=True, name="trim")
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
      self.port = self._server.add_insecure_port(bind)
    except RuntimeError as e:
      self.manager.stop()
      raise OSError(f"cannot listen on {bind} (port in use?): {e}") from None
    self.host = host
    self.address = bind.rsplit(":", 1)[0] + f":{self.port}"

  @property
  def servable(self):
    """The newest loaded version (a servable_lib.Servable)."""
    return self.manager.newest()

  def _trim_when_idle(self, period=2.0):
    """After a burst, once no request is in flight, give freed memory back
    (versions.release_memory): RSS returns near its start."""
    trimmed_at = 0
    while not self._stop.wait(period):
      served = self.service.served
      if self.service.in_flight == 0 and served != trimmed_at:
        versions_lib.release_memory()
        trimmed_at = served

  def start(self):
    self._trimmer.start()
    self._server.start()
    logging.info("Serving model '%s' versions %s at %s", self.manager.name,
                 self.manager.versions, self.address)
    return self

  def stop(self, grace=None):
    """Stops accepting calls; in-flight ones get `grace` seconds."""
    self._server.stop(grace).wait()
    self._stop.set()
    self.manager.stop()
    self.access_log.close()

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc_info):
    self.stop(grace=0)


if __name__ == "__main__":
  # `python -m fastbert_tf.serving.server`: the same as fastbert-serve.
  from fastbert_tf.commands import serve  # pylint: disable=g-import-not-at-top
  serve.run()
