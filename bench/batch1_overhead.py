"""Where small-batch time goes in the early-exit loop (milliseconds per call).

  python bench/batch1_overhead.py --model_dir=runs/ag_news \
      --name=minilm_l6_ag_news [--seq_length=0] [--batch_size=1]

One Ag.News-like text (repeated --batch_size times; --seq_length pads it, 0
keeps its ~20 tokens) through, side by side in alternating rounds:
  plain        the full forward (embeddings, every layer, teacher), no loop;
  floor        embeddings + layer 1 + classifier 1 written out by hand: what
               a sample exiting at layer 1 cannot go below;
  loop s=1     the early-exit loop at speed 1 (every sample exits at layer 1);
  loop s=0     the loop at speed 0 (every sample runs to the teacher);
  and the same two with the loop's tf.cond tree traced as un-lowered `If`
  functions instead of TF's default lowering to Switch/Merge, and with
  dispatch="tensor_array" (no tree: weights read from TensorArrays).

TF lowers each tf.cond inside a tf.function to Switch/Merge, so the ops of
the layers not taken still go through the executor as dead tensors: the
price of choosing one layer out of L inside a while_loop. Un-lowered, the
chosen branch runs as a function call instead; the comparison shows which
costs more at this batch size. Records go to bench/results/batch1_overhead.json.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
from absl import app
from absl import flags
from tensorflow.core.framework import attr_value_pb2
from tensorflow.python.ops import control_flow_util_v2

from bench import common
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import saving

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model directory.")
flags.DEFINE_string("name", None, "Model name in the records.")
flags.DEFINE_integer("seq_length", 0, "Pad the text to this length; 0 = none.")
flags.DEFINE_integer("batch_size", 1, "Copies of the text per call.")
flags.DEFINE_integer("calls", 200, "Calls per timing round.")
flags.DEFINE_integer("rounds", 5, "Alternating rounds; the median is kept.")
flags.DEFINE_string("output", "bench/results/batch1_overhead.json",
                    "Records file.")
flags.mark_flags_as_required(["model_dir", "name"])

TEXT = ("Apple unveiled a new phone with a faster chip and longer battery life "
        "on Tuesday.")


def _trace_loop(model, table, lowered, dispatch="cond"):
  """The compiled early-exit loop, its tf.cond ops lowered (TF's default) or
  kept as `If` functions; returns fn(features, speed)."""
  original = control_flow_util_v2.maybe_set_lowering_attr

  def keep_if_ops(op, lower_using_switch_merge=None):
    if op.type in ("If", "StatelessIf"):
      # pylint: disable=protected-access
      op._set_attr("_lower_using_switch_merge",
                   attr_value_pb2.AttrValue(b=False))
      return
    original(op, lower_using_switch_merge)

  run = early_exit.compiled_early_exit(model, table, dispatch=dispatch)
  if not lowered:
    control_flow_util_v2.maybe_set_lowering_attr = keep_if_ops
  try:
    run.get_concrete_function()  # traced now, with the patch in place
  finally:
    control_flow_util_v2.maybe_set_lowering_attr = original
  return lambda f, s: run(f["token_ids"], f["segment_ids"],
                          f["padding_mask"], tf.constant(s))


def _contenders(model, table):
  spec = [{k: tf.TensorSpec([None, None], tf.int32)
           for k in ("token_ids", "segment_ids", "padding_mask")}]

  @tf.function(input_signature=spec)
  def plain(f):
    hidden = model.backbone(f, training=False)[-1]
    return model.teacher(hidden, f["padding_mask"])

  @tf.function(input_signature=spec)
  def floor(f):
    x = model.backbone.embed(f["token_ids"], f["segment_ids"])
    mask = tf.cast(f["padding_mask"], tf.bool)
    x = model.backbone.transformer_layers[0](x, padding_mask=mask)
    return model.classifiers[0](x, f["padding_mask"])

  lowered = _trace_loop(model, table, lowered=True)
  kept = _trace_loop(model, table, lowered=False)
  arrays = _trace_loop(model, table, lowered=True, dispatch="tensor_array")
  return {"plain": plain, "floor": floor,
          "loop s=1": lambda f: lowered(f, 1.0),
          "loop s=0": lambda f: lowered(f, 0.0),
          "loop s=1, If kept": lambda f: kept(f, 1.0),
          "loop s=0, If kept": lambda f: kept(f, 0.0),
          "loop s=1, tensor_array": lambda f: arrays(f, 1.0),
          "loop s=0, tensor_array": lambda f: arrays(f, 0.0)}


def main(argv):
  del argv
  model, encoder = saving.load_model(FLAGS.model_dir)
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  features = encoder(tf.constant([TEXT] * FLAGS.batch_size))
  if FLAGS.seq_length:
    pad = FLAGS.seq_length - int(features["token_ids"].shape[1])
    features = {k: tf.pad(v, [[0, 0], [0, max(pad, 0)]])
                for k, v in features.items()}
  fns = _contenders(model, table)
  ms = {k: [] for k in fns}
  for fn in fns.values():
    fn(features)  # warm-up
  for _ in range(FLAGS.rounds):
    for key, fn in fns.items():
      start = time.perf_counter()
      for _ in range(FLAGS.calls):
        fn(features)
      ms[key].append((time.perf_counter() - start) / FLAGS.calls * 1e3)
  median = {k: float(np.median(v)) for k, v in ms.items()}
  seq = int(features["token_ids"].shape[1])
  record = common.record(
      benchmark="batch1_overhead", model=FLAGS.name,
      batch_size=FLAGS.batch_size, seq_length=seq,
      ms_per_call=median,
      flops_speedup_exit_at_1=table.baseline / table.cumulative()[0],
      floor_speedup=median["plain"] / median["floor"],
      loop_speedup_exit_at_1=median["plain"] / median["loop s=1"],
      loop_speedup_exit_at_1_if_kept=(median["plain"] /
                                      median["loop s=1, If kept"]),
      loop_speedup_exit_at_1_tensor_array=(median["plain"] /
                                           median["loop s=1, tensor_array"]))
  kept = [r for r in common.read_records(FLAGS.output)
          if (r.get("model"), r.get("batch_size"), r.get("seq_length")) !=
          (FLAGS.name, FLAGS.batch_size, seq)]
  common.write_records(FLAGS.output, kept + [record])
  print(f"{FLAGS.name}, batch {FLAGS.batch_size}, seq {seq} "
        f"(median of {FLAGS.rounds} rounds x {FLAGS.calls} calls):")
  for key, value in median.items():
    print(f"  {key:24s} {value:8.3f} ms  "
          f"({median['plain'] / value:.2f}x plain)")
  print(f"  FLOPs speedup of an exit at layer 1: "
        f"{record['flops_speedup_exit_at_1']:.2f}x")


if __name__ == "__main__":
  app.run(main)
