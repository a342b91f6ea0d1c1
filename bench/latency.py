"""Wall-clock throughput of early exit vs the plain model, FLOPs beside it.

  python bench/latency.py --model_dir=runs/quickstart --data=quickstart \
      --name=quickstart --output=bench/results/latency.json

For each batch size and speed, on a real test split, samples/s of
  (a) the exported SavedModel's `predict_ids` signature (the early-exit loop),
  (b) the same weights as a plain full forward (backbone + teacher, no loop),
  (c) the TFLite model run by LiteRT,
  (d) with --grpc, (a) through the local TF Serving-compatible gRPC server
      (loopback), to price the round trip against the in-process call,
  (e) with --tensor_array, (a) exported with dispatch="tensor_array" (the
      loop reads layer weights from TensorArrays instead of a tf.cond tree),
and the realized speedup (b)/(a) next to the FLOPs speedup. Contenders are
timed in alternating rounds in one process and the median round is kept, so
machine noise hits all of them alike.
"""

import contextlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
import tensorflow_text  # pylint: disable=unused-import
from absl import app
from absl import flags

from bench import common
from fastbert_tf.data import pipeline
from fastbert_tf.data import sources
from fastbert_tf.export import exporter
from fastbert_tf.export import serving_module
from fastbert_tf.export import tflite
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import saving

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model directory.")
flags.DEFINE_string("data", "quickstart", "Source of the test split.")
flags.DEFINE_string("name", None, "Name of the model in the records.")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes.")
flags.DEFINE_list("speeds", ["0", "0.1", "0.5", "0.8"], "Speeds.")
flags.DEFINE_integer("max_samples", 256, "Test samples used per batch size.")
flags.DEFINE_integer("rounds", 3, "Alternating timing rounds.")
flags.DEFINE_boolean("litert", True, "Also time the TFLite model.")
flags.DEFINE_boolean("grpc", True, "Also time the gRPC round trip.")
flags.DEFINE_boolean("tensor_array", True,
                     "Also time an export with dispatch=tensor_array.")
flags.DEFINE_string("output", "bench/results/latency.json",
                    "Records are appended to this json list.")
flags.mark_flags_as_required(["model_dir"])


def _batches(batch_size, encoder):
  test = sources.load_split(FLAGS.data, "test")
  n = min(FLAGS.max_samples, len(test))
  data = sources.TextDataset(test.texts_a[:n],
                             None if test.texts_b is None else test.texts_b[:n],
                             test.labels[:n], test.source)
  ds = pipeline.make_dataset(data, encoder, batch_size)
  return [({k: v.numpy() for k, v in f.items()}, l.numpy()) for f, l in ds]


def _timed(fn, batches):
  """Seconds to run fn over every batch once (after one warm-up batch)."""
  fn(batches[0][0])
  start = time.perf_counter()
  for features, _ in batches:
    fn(features)
  return time.perf_counter() - start


def _contenders(model, saved_model_dir, speeds, use_litert, client=None,
                tensor_array_dir=None):
  """{(name, speed): fn(features) -> dict or tensor}."""
  signature = tf.saved_model.load(saved_model_dir).signatures["predict_ids"]
  arrays = (tf.saved_model.load(tensor_array_dir).signatures["predict_ids"]
            if tensor_array_dir else None)

  @tf.function(input_signature=[{k: tf.TensorSpec([None, None], tf.int32)
                                 for k in serving_module.ID_INPUTS}])
  def plain(features):
    hidden = model.backbone(features, training=False)[-1]
    return tf.nn.softmax(model.teacher(hidden, features["padding_mask"]))

  fns = {("plain_forward", None): plain}
  runner = (tflite.LiteRTRunner(tflite.convert(saved_model_dir),
                                num_threads=os.cpu_count())
            if use_litert else None)
  for s in speeds:
    fns[("saved_model", s)] = (
        lambda f, s=s: signature(speed=tf.constant(s), **f))
    if runner:
      fns[("litert", s)] = lambda f, s=s: runner(speed=s, **f)
    if client:
      fns[("grpc", s)] = lambda f, s=s: client.predict_ids(speed=s, **f)
    if arrays:
      fns[("tensor_array", s)] = (
          lambda f, s=s: arrays(speed=tf.constant(s), **f))
  return fns


def _measure(model, saved_model_dir, batch_size, encoder, speeds,
             client=None, tensor_array_dir=None):
  batches = _batches(batch_size, encoder)
  n = sum(len(l) for _, l in batches)
  fns = _contenders(model, saved_model_dir, speeds, FLAGS.litert, client,
                    tensor_array_dir)
  seconds = {key: [] for key in fns}
  for _ in range(FLAGS.rounds):
    for key, fn in fns.items():
      seconds[key].append(_timed(fn, batches))
  median = {key: float(np.median(v)) for key, v in seconds.items()}
  records = []
  for s in speeds:
    outs = [fns[("saved_model", s)](f) for f, _ in batches]
    mean_flops = float(np.mean(np.concatenate([o["flops"] for o in outs])))
    accuracy = float(np.mean(np.concatenate(
        [o["label"].numpy() == l for o, (_, l) in zip(outs, batches)])))
    baseline = flops_lib.flops_table(
        model.get_config(), encoder.max_seq_length).baseline
    record = dict(
        benchmark="latency", model=FLAGS.name, batch_size=batch_size, speed=s,
        num_samples=n, accuracy=accuracy, mean_flops=mean_flops,
        flops_speedup=baseline / mean_flops,
        plain_samples_per_second=n / median[("plain_forward", None)],
        saved_model_samples_per_second=n / median[("saved_model", s)],
        realized_speedup=median[("plain_forward", None)] /
        median[("saved_model", s)])
    if FLAGS.litert:
      record["litert_samples_per_second"] = n / median[("litert", s)]
      record["litert_realized_speedup"] = (
          median[("plain_forward", None)] / median[("litert", s)])
    if client:
      record["grpc_samples_per_second"] = n / median[("grpc", s)]
      record["grpc_over_in_process_time"] = (median[("grpc", s)] /
                                             median[("saved_model", s)])
    if tensor_array_dir:
      record["tensor_array_samples_per_second"] = (
          n / median[("tensor_array", s)])
      record["tensor_array_realized_speedup"] = (
          median[("plain_forward", None)] / median[("tensor_array", s)])
      record["tensor_array_realized_over_flops"] = (
          record["tensor_array_realized_speedup"] / record["flops_speedup"])
    record["realized_over_flops"] = (record["realized_speedup"] /
                                     record["flops_speedup"])
    records.append(common.record(**record))
  return records


def main(argv):
  del argv
  model, encoder = saving.load_model(FLAGS.model_dir)
  speeds = [float(s) for s in FLAGS.speeds]
  with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
    saved_model_dir = exporter.export_saved_model(model, encoder, tmp)
    tensor_array_dir = None
    if FLAGS.tensor_array:  # its own base: the gRPC server serves `tmp`
      tensor_array_dir = exporter.export_saved_model(
          model, encoder, stack.enter_context(tempfile.TemporaryDirectory()),
          dispatch="tensor_array")
    client = None
    if FLAGS.grpc:
      from fastbert_tf.serving import client as client_lib  # pylint: disable=g-import-not-at-top
      from fastbert_tf.serving import server as server_lib  # pylint: disable=g-import-not-at-top
      server = stack.enter_context(server_lib.LocalServer(tmp, "bench"))
      client = stack.enter_context(
          client_lib.FastBertClient(server.address, "bench", timeout=60.0))
    records = []
    for batch_size in (int(b) for b in FLAGS.batch_sizes):
      records += _measure(model, saved_model_dir, batch_size, encoder, speeds,
                          client, tensor_array_dir)
  previous = common.read_records(FLAGS.output)
  previous = [r for r in previous if r.get("model") != FLAGS.name]
  common.write_records(FLAGS.output, previous + records)
  for r in records:
    litert = (f" litert {r['litert_samples_per_second']:8.1f}/s"
              if "litert_samples_per_second" in r else "")
    litert += (f" grpc {r['grpc_samples_per_second']:8.1f}/s"
               if "grpc_samples_per_second" in r else "")
    litert += (f" tensor_array {r['tensor_array_samples_per_second']:8.1f}/s "
               f"({r['tensor_array_realized_speedup']:.2f}x)"
               if "tensor_array_samples_per_second" in r else "")
    print(f"{r['model']} batch {r['batch_size']:>2} speed {r['speed']:.1f}: "
          f"plain {r['plain_samples_per_second']:8.1f}/s "
          f"loop {r['saved_model_samples_per_second']:8.1f}/s{litert} "
          f"realized {r['realized_speedup']:.2f}x "
          f"FLOPs {r['flops_speedup']:.2f}x acc {100 * r['accuracy']:.2f}")


if __name__ == "__main__":
  app.run(main)
