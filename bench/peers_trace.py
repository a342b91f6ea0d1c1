"""Where batch-1 time goes: a per-op breakdown of a SavedModel's predict_ids
run through the TF1 session loader (TF Serving's path), from TF's step stats.

  .venv/bin/python bench/peers_trace.py --workdir=runs/peers_ag_news/peers \
      --exports=saved_model_cond/1,saved_model_tensor_array/1,proto/xla_b1 \
      --speeds=0,0.5 --texts=64

For each export and speed: the texts of bench/peers_tf.py's work directory
run one at a time with RunOptions(trace_level=FULL_TRACE); the step stats
give every op execution with its wall time. Reported per call: op
executions, the summed op time, the call's wall time without tracing, and
the op time grouped by kind (matmuls, element-wise and the rest of the
math, control flow and bookkeeping, XLA launches, ...) and by op type.
Tracing adds its own cost to every op, so the counts and shares are what
to read, not the absolute times. Records go to --output.
"""

import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
import tensorflow_text  # pylint: disable=unused-import
from absl import app
from absl import flags
from tensorflow.core.protobuf import config_pb2

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "runs/peers_ag_news/peers", "Work directory.")
flags.DEFINE_list("exports", ["saved_model_cond/1",
                              "saved_model_tensor_array/1"],
                  "SavedModel directories under --workdir.")
flags.DEFINE_list("speeds", ["0", "0.5"], "Speeds.")
flags.DEFINE_integer("texts", 64, "Texts (batch 1 each).")
flags.DEFINE_integer("threads", 2, "Intra- and inter-op threads.")
flags.DEFINE_string("output", "bench/results/peers_trace.json", "Records.")

IDS = ("token_ids", "segment_ids", "padding_mask")
KINDS = {
    "matmul": ("MatMul", "BatchMatMul", "Einsum", "_Fused", "_Mkl", "Conv"),
    "xla": ("_Xla", "XlaLaunch", "XlaRun", "XlaCompile"),
    "control flow": ("Switch", "Merge", "Enter", "Exit", "NextIteration",
                     "LoopCond", "While", "If", "Case", "PartitionedCall",
                     "StatefulPartitionedCall", "_SwitchN", "ControlTrigger",
                     "NoOp", "Identity", "_Recv", "_Send", "Const", "_Arg",
                     "_Retval"),
    "bookkeeping": ("TensorArray", "Where", "Gather", "Scatter", "Fill",
                    "Range", "Size", "Shape", "Pack", "Unpack", "Concat",
                    "StridedSlice", "Slice", "Reshape", "ExpandDims", "Squeeze",
                    "Transpose", "Assert", "Cast", "Less", "Greater",
                    "Equal", "LogicalAnd", "LogicalOr", "LogicalNot", "All",
                    "Any", "BroadcastTo", "ReadVariableOp", "ZerosLike",
                    "Select", "Tile", "Pad"),
}


def kind_of(op_type):
  for kind, prefixes in KINDS.items():
    if any(op_type.startswith(p) for p in prefixes):
      return kind
  return "other math (element-wise, reductions, softmax, ...)"


def op_type_of(node_stats):
  # timeline_label reads "name = OpType(inputs)".
  label = node_stats.timeline_label
  if " = " in label:
    return label.split(" = ", 1)[1].split("(", 1)[0]
  return node_stats.node_name.split(":")[0]


def trace(directory, inputs, speed):
  graph = tf.Graph()
  config = tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=FLAGS.threads,
      inter_op_parallelism_threads=FLAGS.threads)
  with graph.as_default(), tf.compat.v1.Session(graph=graph,
                                                config=config) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], directory)
    sig = meta.signature_def["predict_ids"]
    fetch = sig.outputs["label"].name

    def feed(f):
      d = {sig.inputs[k].name: v for k, v in f.items()}
      d[sig.inputs["speed"].name] = np.float32(speed)
      return d
    for f in inputs:  # warm-up: every input once, so an XLA export has
      sess.run(fetch, feed(f))  # compiled each of its length buckets
    start = time.perf_counter()
    for f in inputs:
      sess.run(fetch, feed(f))
    wall_ms = (time.perf_counter() - start) / len(inputs) * 1e3
    by_type = collections.defaultdict(lambda: [0, 0.0])
    options = config_pb2.RunOptions(
        trace_level=config_pb2.RunOptions.FULL_TRACE)
    for f in inputs:
      run_meta = config_pb2.RunMetadata()
      sess.run(fetch, feed(f), options=options, run_metadata=run_meta)
      for dev in run_meta.step_stats.dev_stats:
        for ns in dev.node_stats:
          t = op_type_of(ns)
          by_type[t][0] += 1
          by_type[t][1] += (ns.op_end_rel_micros - ns.op_start_rel_micros)
  n = len(inputs)
  types = {t: dict(executions=c / n, micros=us / n)
           for t, (c, us) in sorted(by_type.items(),
                                    key=lambda kv: -kv[1][1])}
  kinds = collections.defaultdict(lambda: dict(executions=0.0, micros=0.0))
  for t, v in types.items():
    k = kinds[kind_of(t)]
    k["executions"] += v["executions"]
    k["micros"] += v["micros"]
  return dict(wall_ms_untraced=wall_ms,
              op_executions=sum(v["executions"] for v in types.values()),
              op_micros=sum(v["micros"] for v in types.values()),
              by_kind=dict(kinds), by_type=types)


def main(argv):
  del argv
  ids = dict(np.load(os.path.join(FLAGS.workdir, "ids.npz")))
  inputs = [{k: ids[f"b1_{i}_{k}"] for k in IDS} for i in range(FLAGS.texts)]
  records = []
  for export in FLAGS.exports:
    for s in (float(x) for x in FLAGS.speeds):
      r = trace(os.path.join(FLAGS.workdir, export), inputs, s)
      records.append(common.record(benchmark="peers_trace", export=export,
                                   speed=s, texts=len(inputs), **r))
      print(f"{export} speed {s:g}: {r['wall_ms_untraced']:.2f} ms/call "
            f"untraced, {r['op_executions']:.0f} op executions, "
            f"{r['op_micros'] / 1e3:.2f} ms summed op time (traced)")
      for k, v in sorted(r["by_kind"].items(), key=lambda kv: -kv[1]["micros"]):
        print(f"    {k:52s} {v['executions']:7.0f} ops {v['micros']:9.0f} us")
      top = list(r["by_type"].items())[:12]
      print("    top op types: " + ", ".join(
          f"{t} {v['micros']:.0f}us/{v['executions']:.0f}" for t, v in top))
  common.write_records(FLAGS.output,
                       common.read_records(FLAGS.output) + records)


if __name__ == "__main__":
  app.run(main)
