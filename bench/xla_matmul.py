"""One text's feed-forward matmuls on the CPU: TF's kernels (oneDNN) against
XLA under its matmul back-end flags, float32 and bfloat16 (issue 16 part 2:
why the one-text XLA program is matmul-bound, and why the bf16 export does
not help one text).

  .venv/bin/python bench/xla_matmul.py --output=bench/results/xla_matmul.json

Each cell is x [seq, 384] @ [384, 1536] @ [1536, 384] (a MiniLM-L6
feed-forward block), a tf.function with or without jit_compile, timed over
--calls calls after one warm-up; every XLA_FLAGS variant runs in a fresh
process (XLA reads the flags once), in --rounds alternating rounds (median).
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
flags.DEFINE_list("seqs", ["16", "64"], "Sequence lengths.")
flags.DEFINE_integer("calls", 500, "Timed calls per cell.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds; the median is kept.")
flags.DEFINE_string("output", "bench/results/xla_matmul.json", "Records.")
flags.DEFINE_boolean("child", False, "Internal: time the cells once.")

XLA_VARIANTS = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn_dot_fusion": "--xla_cpu_experimental_onednn_fusion_type=dot",
    "xnn_dot_fusion": "--xla_cpu_experimental_xnn_fusion_type=dot",
    "vector_width_512": "--xla_cpu_prefer_vector_width=512",
}


def time_cells():
  """{"<seq> <dtype> <graph|xla>": ms per call}."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(2)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  rng = np.random.default_rng(0)
  out = {}
  for seq in (int(s) for s in FLAGS.seqs):
    for dtype in (tf.float32, tf.bfloat16):
      x = tf.cast(rng.normal(size=(seq, 384)), dtype)
      w1 = tf.cast(rng.normal(size=(384, 1536)), dtype)
      w2 = tf.cast(rng.normal(size=(1536, 384)), dtype)
      for jit in (False, True):
        fn = tf.function(lambda a, w1=w1, w2=w2: tf.matmul(tf.matmul(a, w1),
                                                            w2),
                         jit_compile=jit)
        fn(x).numpy()
        start = time.perf_counter()
        for _ in range(FLAGS.calls):
          y = fn(x)
        y.numpy()
        out[f"{seq} {dtype.name} {'xla' if jit else 'graph'}"] = (
            1e3 * (time.perf_counter() - start) / FLAGS.calls)
  return out


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(time_cells()))
    return
  import numpy as np  # pylint: disable=g-import-not-at-top
  runs = {name: [] for name in XLA_VARIANTS}
  for _ in range(FLAGS.rounds):
    for name, xla_flags in XLA_VARIANTS.items():
      proc = subprocess.run(
          [sys.executable, __file__, "--child", f"--calls={FLAGS.calls}",
           f"--seqs={','.join(FLAGS.seqs)}"], capture_output=True, text=True,
          check=True, env=dict(os.environ, XLA_FLAGS=xla_flags,
                               TF_CPP_MIN_LOG_LEVEL="2"))
      runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
  ms = {name: {cell: float(np.median([r[cell] for r in rs]))
               for cell in rs[0]} for name, rs in runs.items()}
  flops = {cell: 2 * 2 * int(cell.split()[0]) * 384 * 1536
           for cell in ms["default"]}
  for name, cells in ms.items():
    print(f"XLA_FLAGS={XLA_VARIANTS[name]!r}")
    for cell, v in cells.items():
      if name == "default" or cell.endswith("xla"):
        print(f"  {cell}: {v:.3f} ms, {flops[cell] / v / 1e6:.0f} GFLOP/s")
  common.write_records(FLAGS.output, common.read_records(FLAGS.output) + [
      common.record(benchmark="xla_matmul", xla_flags=XLA_VARIANTS,
                    ms_per_call=ms, rounds=FLAGS.rounds, calls=FLAGS.calls,
                    load_average=os.getloadavg())])


if __name__ == "__main__":
  app.run(main)
