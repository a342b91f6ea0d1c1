"""What `--single_text=xla` costs at load: seconds per bucket compilation
(the first request of one text at that length) against a warm request of
the same length, for each export given (issue 16 part 2).

  .venv/bin/python bench/single_text_compile.py \
      --exports=runs/peers_ag_news/peers/saved_model_xla/1,runs/peers_ag_news/peers/saved_model_xla_fine/1 \
      --output=bench/results/single_text_compile.json

Each export is loaded in a fresh process (XLA's compilation cache is per
process) and asked, for each bucket length in its warmup requests, one
predict_ids request of exactly that length: the first call compiles, the
next five are timed warm (median).
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
  """{bucket: (first-call seconds, warm median seconds)} and load seconds."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(2)
  tf.config.threading.set_inter_op_parallelism_threads(2)
  start = time.perf_counter()
  signature = tf.saved_model.load(path).signatures["predict_ids"]
  load = time.perf_counter() - start
  warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
  out = {}
  for raw in tf.data.TFRecordDataset(warmup):
    request = prediction_log_pb2.PredictionLog.FromString(
        raw.numpy()).predict_log.request
    if (request.model_spec.signature_name != "predict_ids" or
        tf.make_ndarray(request.inputs["token_ids"]).shape[0] != 1):
      continue
    inputs = {k: tf.constant(tf.make_ndarray(request.inputs[k]))
              for k in ("token_ids", "segment_ids", "padding_mask")}
    length = int(inputs["token_ids"].shape[1])
    times = []
    for _ in range(6):
      t = time.perf_counter()
      signature(speed=tf.constant(0.5), **inputs)["label"].numpy()
      times.append(time.perf_counter() - t)
    out[length] = (times[0], float(np.median(times[1:])))
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
    load, out = child["load"], child["buckets"]
    rows = {k: dict(first_call_s=round(a, 3), warm_s=round(b, 5))
            for k, (a, b) in sorted(out.items(), key=lambda kv: int(kv[0]))}
    compile_total = sum(a - b for a, b in out.values())
    records.append(common.record(
        benchmark="single_text_compile", export=path, load_seconds=load,
        buckets=rows, compile_seconds_total=compile_total))
    print(f"{path}: load {load:.1f} s, compilations {compile_total:.1f} s "
          f"over {len(out)} buckets")
    for k, r in rows.items():
      print(f"  {k}: first call {r['first_call_s']:.2f} s, warm "
            f"{1e3 * r['warm_s']:.2f} ms")
  common.write_records(FLAGS.output,
                       common.read_records(FLAGS.output) + records)


if __name__ == "__main__":
  app.run(main)
