"""What `--single_text=xla` costs at load: which of the one-text warmup
requests compile (first call vs warm), and how long, per signature, for
each export given (issue 16 part 2).

  .venv/bin/python bench/single_text_compile.py \
      --exports=runs/peers_ag_news/peers/saved_model_xla/1,runs/peers_ag_news/peers/saved_model_xla_fine/1 \
      --output=bench/results/single_text_compile.json

Each export is loaded in a fresh process (XLA's compilation cache is per
process) and its one-text warmup requests are replayed in file order, as
TF Serving replays them: each request's first call, then five warm calls
(median). A first call > 0.5 s over the warm time counts as a compilation.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_list("exports", [], "SavedModel version directories.")
flags.DEFINE_string("output", "bench/results/single_text_compile.json",
                    "Records.")
flags.DEFINE_string("child", None, "Internal: measure this export.")


def measure(path):
  """Replays the export's one-text warmup requests in file order (as TF
  Serving does): per request its signature, token count, first-call and
  warm seconds; plus the load seconds."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(2)
  tf.config.threading.set_inter_op_parallelism_threads(2)
  start = time.perf_counter()
  loaded = tf.saved_model.load(path)
  load = time.perf_counter() - start
  warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
  out = []
  for raw in tf.data.TFRecordDataset(warmup):
    request = prediction_log_pb2.PredictionLog.FromString(
        raw.numpy()).predict_log.request
    inputs = {k: tf.constant(tf.make_ndarray(v))
              for k, v in request.inputs.items()}
    if inputs["speed"].shape[0] != 1:
      continue
    signature = loaded.signatures[request.model_spec.signature_name]
    times = []
    for _ in range(6):
      t = time.perf_counter()
      outputs = signature(**inputs)
      outputs["label"].numpy()
      times.append(time.perf_counter() - t)
    out.append(dict(signature=request.model_spec.signature_name,
                    first_call_s=times[0],
                    warm_s=float(np.median(times[1:]))))
  return load, out


def main(argv):
  del argv
  if FLAGS.child:
    load, out = measure(FLAGS.child)
    print(json.dumps(dict(load=load, buckets=out)))
    return
  records = []
  for path in FLAGS.exports:
    proc = subprocess.run(
        [sys.executable, __file__, f"--child={path}"], capture_output=True,
        text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    load, calls = child["load"], child["buckets"]
    # A first call more than 0.5 s over its warm time compiled something.
    compiled = [c for c in calls if c["first_call_s"] - c["warm_s"] > 0.5]
    by_signature = {}
    for c in compiled:
      by_signature.setdefault(c["signature"], []).append(
          round(c["first_call_s"] - c["warm_s"], 2))
    records.append(common.record(
        benchmark="single_text_compile", export=path, load_seconds=load,
        calls=calls, compilations_by_signature=by_signature,
        compile_seconds_total=sum(sum(v) for v in by_signature.values())))
    print(f"{path}: load {load:.1f} s; {len(calls)} one-text warmup "
          f"requests; compilations (s) by signature: {by_signature}")
  common.write_records(FLAGS.output,
                       common.read_records(FLAGS.output) + records)


if __name__ == "__main__":
  app.run(main)
