"""Where the one-text XLA program spends its time: a TF profiler trace of
an export made with `--single_text=xla`, its XLA thunks grouped by kind
(issue 16 part 2: the per-op breakdown behind the missed targets).

  .venv/bin/python bench/single_text_profile.py \
      --export=runs/peers_ag_news/peers/saved_model_xla/1 \
      --ids=runs/peers_ag_news/peers/ids.npz --texts=64 --speeds=0,0.5

Each speed: every text once untraced (compilations, warm-up), then once
traced. Thunk names are XLA's HLO names with layer numbers and
TF-inlining suffixes removed ("MatMul": the feed-forward matmuls, which
keep TF's op name; "dot": the attention and classifier projections and
the attention products; "*_fusion": XLA's fused elementwise work).
Times are the thunks' own durations summed; the profiler adds overhead, so
the untraced ms per text are recorded beside them.
"""

import collections
import glob
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("export", None, "A SavedModel version made with "
                    "--single_text=xla.")
flags.DEFINE_string("ids", None, "ids.npz of bench/peers_tf.py --mode=prepare "
                    "(b1_<i>_<input> arrays).")
flags.DEFINE_integer("texts", 64, "Texts per speed.")
flags.DEFINE_list("speeds", ["0", "0.5"], "Speeds.")
flags.DEFINE_string("output", "bench/results/single_text_profile.json",
                    "Records.")
flags.mark_flags_as_required(["export", "ids"])

# Host events that wrap the program (or are the executor around it), not
# work inside it.
_WRAPPERS = ("ThunkExecutor", "signature_wrapper", "TFE_", "Eager",
             "KernelAndDevice", "ExecutorState", "CpuExecutable",
             "BlockUntilReady", "FunctionRun", "ExecutorDoneCallback",
             "end: ")


def thunk_kind(name):
  """'MatMul_tfg_inlined_cond_3_1.2' -> 'MatMul'; None for wrappers and
  the layer conditionals (which contain the other events)."""
  if name.startswith(_WRAPPERS) or re.match(r"cond(_\d+)?\.\d+$", name):
    return None
  name = re.sub(r"_tfg_inlined_cond(_\d+)*", "", name)
  return re.sub(r"\d+", "#", re.sub(r"\.\d+$", "", name))


def breakdown(logdir):
  """{kind: (ms, count)} of the host plane in the trace under logdir."""
  try:
    from tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                   recursive=True)[0]
  space = xplane_pb2.XSpace()
  with open(path, "rb") as f:
    space.ParseFromString(f.read())
  plane = next(p for p in space.planes if p.name == "/host:CPU")
  names = {k: v.name for k, v in plane.event_metadata.items()}
  ms, count = collections.Counter(), collections.Counter()
  for line in plane.lines:
    for event in line.events:
      kind = thunk_kind(names.get(event.metadata_id, "?"))
      if kind:
        ms[kind] += event.duration_ps / 1e9
        count[kind] += 1
  return {k: (ms[k], count[k]) for k in ms}


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
  tf.config.threading.set_intra_op_parallelism_threads(2)
  tf.config.threading.set_inter_op_parallelism_threads(2)
  signature = tf.saved_model.load(FLAGS.export).signatures["predict_ids"]
  ids = np.load(FLAGS.ids)
  texts = [{k: tf.constant(ids[f"b1_{i}_{k}"])
            for k in ("token_ids", "segment_ids", "padding_mask")}
           for i in range(FLAGS.texts)]
  by_speed = {}
  for speed in (float(s) for s in FLAGS.speeds):
    run = lambda f, s=speed: signature(speed=tf.constant(s), **f)["label"]
    for f in texts:
      run(f).numpy()
    start = time.perf_counter()
    for f in texts:
      run(f).numpy()
    untraced = 1e3 * (time.perf_counter() - start) / len(texts)
    logdir = tempfile.mkdtemp(prefix="single_text_profile_")
    tf.profiler.experimental.start(logdir)
    for f in texts:
      run(f).numpy()
    tf.profiler.experimental.stop()
    kinds = breakdown(logdir)
    total = sum(ms for ms, _ in kinds.values())
    rows = {k: dict(ms_per_text=ms / len(texts), share=ms / total,
                    per_text=n / len(texts))
            for k, (ms, n) in sorted(kinds.items(), key=lambda kv: -kv[1][0])}
    by_speed[f"{speed:g}"] = dict(untraced_ms_per_text=untraced,
                                  traced_thunk_ms_per_text=total / len(texts),
                                  kinds=rows)
    print(f"speed {speed:g}: {untraced:.2f} ms/text untraced; thunks "
          f"{total / len(texts):.2f} ms/text traced")
    for k, r in list(rows.items())[:8]:
      print(f"  {100 * r['share']:5.1f}%  {r['ms_per_text']:.3f} ms  "
            f"x{r['per_text']:.1f}  {k}")
  common.write_records(FLAGS.output, common.read_records(FLAGS.output) + [
      common.record(benchmark="single_text_profile", export=FLAGS.export,
                    texts=FLAGS.texts, speeds=by_speed,
                    load_average=os.getloadavg())])


if __name__ == "__main__":
  app.run(main)
