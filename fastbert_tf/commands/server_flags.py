"""The local server's absl flags and their translation into LocalServer
arguments (fastbert-serve defines them)."""

from absl import flags

from fastbert_tf import paths
from fastbert_tf.serving import batching
from fastbert_tf.serving import validation
from fastbert_tf.serving import versions

_LIMITS = validation.RequestLimits()
_BATCHING = batching.BatchingOptions()


def define_flags():
  """Every flag of fastbert-serve."""
  flags.DEFINE_string("model_base_path", None,
                      "Export base directory: <base>/<version>/saved_model.pb.")
  flags.DEFINE_string("model_name", "default",
                      "Model name clients put in ModelSpec.name.")
  flags.DEFINE_integer("port", 8500, "gRPC port (0 = pick a free one).")
  flags.DEFINE_string("host", "127.0.0.1",
                      "Interface to bind; 0.0.0.0 exposes the server.")
  flags.DEFINE_integer("max_workers", 16, "Request threads.")
  flags.DEFINE_integer("max_message_mb", 16,
                       "Largest request, MiB (gRPC refuses larger ones with "
                       "RESOURCE_EXHAUSTED before decoding).")
  flags.DEFINE_integer("max_texts_per_request", _LIMITS.max_texts,
                       "Most examples (texts or id rows) in one request.")
  flags.DEFINE_integer("max_text_chars", _LIMITS.max_text_chars,
                       "Longest text accepted, in characters.")
  flags.DEFINE_integer("max_request_chars", _LIMITS.max_request_chars,
                       "Most characters over all texts of one request.")
  flags.DEFINE_float("file_system_poll_wait_seconds", 1.0,
                     "How often to look for new versions under the base "
                     "path; 0 = only at start-up.")
  flags.DEFINE_integer("max_versions", 1,
                       "How many of the newest good versions stay loaded "
                       "(TF Serving's latest policy, num_versions).")
  flags.DEFINE_string("version_labels", "",
                      "LABEL=VERSION pairs, e.g. stable=1,canary=2; "
                      "labelled versions stay loaded.")
  flags.DEFINE_string("access_log", None,
                      "Access log file (appended; '-' = stderr); default: "
                      "the absl log at INFO.")
  flags.DEFINE_bool("enable_batching", False,
                    "Merge concurrent requests to one signature into one "
                    "run (each keeps its own speed).")
  flags.DEFINE_integer("max_batch_size", _BATCHING.max_batch_size,
                       "Batching: most examples per merged run.")
  flags.DEFINE_integer("batch_timeout_micros", _BATCHING.batch_timeout_micros,
                       "Batching: longest wait for a batch to fill.")
  flags.DEFINE_integer("num_batch_threads", _BATCHING.num_batch_threads,
                       "Batching: merged runs in flight at once.")
  flags.DEFINE_integer("max_enqueued_batches", _BATCHING.max_enqueued_batches,
                       "Batching: queue capacity in batches (full: "
                       "UNAVAILABLE).")
  flags.mark_flag_as_required("model_base_path")


def server_kwargs(flag):
  """Parsed flags -> LocalServer keyword arguments.

  Raises:
    ValueError: a limit below 1 or a malformed --version_labels.
    errors.PathError: --model_base_path or --access_log cannot work.
  """
  paths.check_paths(
      [paths.Arg("--model_base_path", flag.model_base_path, paths.READ_DIR),
       paths.Arg("--access_log", flag.access_log, paths.WRITE_FILE)])
  options = None
  if flag.enable_batching:
    options = batching.BatchingOptions(
        flag.max_batch_size, flag.batch_timeout_micros,
        flag.num_batch_threads, flag.max_enqueued_batches)
  return dict(
      model_base_path=flag.model_base_path, model_name=flag.model_name,
      port=flag.port, host=flag.host, max_workers=flag.max_workers,
      max_message_bytes=flag.max_message_mb << 20,
      limits=validation.RequestLimits(
          max_texts=flag.max_texts_per_request,
          max_text_chars=flag.max_text_chars,
          max_request_chars=flag.max_request_chars),
      poll_wait_seconds=flag.file_system_poll_wait_seconds,
      max_versions=flag.max_versions,
      version_labels=versions.parse_labels(flag.version_labels),
      batching_options=options, access_log=flag.access_log)
