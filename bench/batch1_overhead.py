"""Where batch-1 time goes in the early-exit loop (quick probe, prints ms).

  PYTHONPATH=. python bench/batch1_overhead.py

Compares, for one short text on runs/ag_news (the MiniLM-L6 model): the plain
6-layer forward, a hand-written embed + layer 1 + classifier (the floor for a
sample exiting at layer 1), the early-exit tf.function and the exported
signature at speed 1 (exit at layer 1), and the loop at speed 0.
"""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import time, tempfile, numpy as np, tensorflow as tf, tensorflow_text
from fastbert_tf.models import saving
from fastbert_tf.inference import early_exit, flops as F
from fastbert_tf.serving import export
m, enc = saving.load_model("runs/ag_news")
t = F.flops_table(m.get_config(), enc.max_seq_length)
ids = {k: v.numpy() for k, v in enc(tf.constant(["Apple unveiled a new phone with a faster chip and longer battery life on Tuesday."])).items()}
run = early_exit.compiled_early_exit(m, t)
tmp = tempfile.mkdtemp(); p = export.export_saved_model(m, enc, tmp)
sig = tf.saved_model.load(p).signatures["predict_ids"]
@tf.function(input_signature=[{k: tf.TensorSpec([None,None], tf.int32) for k in ids}])
def plain(f):
  h = m.backbone(f, training=False)[-1]; return m.teacher(h, f["padding_mask"])
@tf.function(input_signature=[{k: tf.TensorSpec([None,None], tf.int32) for k in ids}])
def one_layer(f):
  x = m.backbone.embed(f["token_ids"], f["segment_ids"]); mk = tf.cast(f["padding_mask"], tf.bool)
  x = m.backbone.transformer_layers[0](x, padding_mask=mk); return m.students[0](x, f["padding_mask"])
T = {k: tf.constant(v) for k, v in ids.items()}
def bench(fn, n=200):
  fn(); fn(); t0=time.perf_counter()
  for _ in range(n): fn()
  return (time.perf_counter()-t0)/n*1e3
for r in range(2):
  print("plain 6 layers", round(bench(lambda: plain(T)),3), "| 1 layer+clf", round(bench(lambda: one_layer(T)),3),
        "| loop fn s=1", round(bench(lambda: run(T["token_ids"], T["segment_ids"], T["padding_mask"], tf.constant(1.0))),3),
        "| signature s=1", round(bench(lambda: sig(speed=tf.constant(1.0), **T)),3),
        "| loop fn s=0", round(bench(lambda: run(T["token_ids"], T["segment_ids"], T["padding_mask"], tf.constant(0.0))),3))
