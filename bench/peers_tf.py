"""The TensorFlow side of bench/peers.py: preparing the shared work directory,
and the TF and LiteRT timing workers. Run from the main venv.

  # once per model: exports, token ids, ported weights, reference answers
  .venv/bin/python bench/peers_tf.py --mode=prepare \
      --model_dir=runs/peers_ag_news --workdir=runs/peers_ag_news/peers
  # workers are started by bench/peers.py, e.g.
  .venv/bin/python bench/peers_tf.py --mode=worker --runtime=tf \
      --workdir=runs/peers_ag_news/peers

prepare writes into --workdir (replacing what is there):
  texts.json            the first --max_samples test texts, gold labels, and
                        the model's shape (layers, classes, HF config);
  ids.npz               our tokenizer's ids: b1_<i>_<input> for text i alone
                        (no padding), b32_<j>_<input> for batch j of 32
                        consecutive texts padded to its longest;
  saved_model_cond/1, saved_model_tensor_array/1   exporter.export_saved_model
                        with each dispatch; model.tflite (the cond export's
                        predict_ids, as export/export_tflite.py converts it);
  saved_model_xla/1, saved_model_xla_fine/1, saved_model_bf16/1   the
                        export options for one text at a time
                        (EXPORT_OPTIONS; tensor_array loop for batches):
                        --single_text=xla (default and finer buckets),
                        --dtype_policy=mixed_bfloat16; model_xla.tflite;
  hf_weights.npz        the backbone under Hugging Face BertModel names and
                        layouts (the converter table of
                        fastbert_tf.checkpoints.huggingface run backwards);
  heads_weights.npz     classifier k's weights as PyTorch Linear [out, in]:
                        c<k>.input_dense.weight, ... (k = 0 .. L-1, L-1 the
                        teacher);
  reference.json        our cond SavedModel's labels, exit layers and
                        uncertainties per batch size and speed: every other
                        contender must agree with them on every text.

Workers (--mode=worker) time, per batch size b in {1, 32}:
  tf/saved_model_cond, tf/saved_model_tensor_array, tf/saved_model_xla,
    tf/saved_model_xla_fine, tf/saved_model_bf16: the exported predict_ids signature
    (tf.saved_model.load), per speed (bf16 may differ from the reference on
    up to 5% of the texts; its own accuracy is recorded);
  tf/plain: backbone + teacher as one tf.function, no loop (full model);
  tf/truncated: the floor of the loop. Batch 1: for each text a tf.function
    that runs exactly the layers and classifiers the loop runs for it
    (embeddings, layers 1..k, classifiers 1..k, or at speed 0 the teacher
    only; k = its exit layer), straight-line code; batch 32: the loop's
    algorithm unrolled over the layers in one tf.function (no while_loop,
    no tf.cond), dropping answered rows after each classifier;
  litert/litert (--runtime=litert): model.tflite through LiteRT, per speed;
  litert/litert_xla: model_xla.tflite, converted from saved_model_xla.
"""

import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app
from absl import flags

from bench import peers_lib
from fastbert_tf.models import architecture

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "worker", ["prepare", "worker"], "What to do.")
flags.DEFINE_enum("runtime", "tf", ["tf", "litert"], "Worker runtime.")
flags.DEFINE_string("model_dir", "runs/peers_ag_news", "Trained model (prepare).")
flags.DEFINE_string("data", "../shared/data/ag_news", "Test split source.")
flags.DEFINE_string("workdir", "runs/peers_ag_news/peers", "Work directory.")
flags.DEFINE_integer("max_samples", 256, "Test texts (prepare).")
flags.DEFINE_integer("threads", 2, "Intra-op threads (and inter-op for TF).")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes timed.")
flags.DEFINE_integer("seed", 0, "Order of contenders within a group.")
flags.DEFINE_integer("texts", 0, "Use the first N texts only (0: all).")
flags.DEFINE_string("family", None,
                    "Family name in the keys (default: the runtime); a TF "
                    "worker run under other settings (bench/peers.py "
                    "--tf_variants) gets its own.")
flags.DEFINE_list("only", [],
                  "Keep only these contender names (e.g. "
                  "saved_model_cond,saved_model_tensor_array); empty: all.")

IDS = ("token_ids", "segment_ids", "padding_mask")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
  return tf


# -- prepare -----------------------------------------------------------------

def hf_state_dict(model):
  """The backbone as a Hugging Face BertModel state dict (numpy), by the
  project's own HF converter table run backwards."""
  from fastbert_tf.checkpoints import base  # pylint: disable=g-import-not-at-top
  from fastbert_tf.checkpoints import huggingface  # pylint: disable=g-import-not-at-top
  weights = base.backbone_weights(model.backbone)
  rows = base.expand_map(huggingface.MAP, model.num_layers, prefix="",
                         gamma="weight", beta="bias")
  out = {}
  for source, target, layout in rows:
    value = weights.pop(target).numpy()
    shape = base.expected_source_shape(layout, value.shape)
    if layout.endswith("_t"):
      value = np.reshape(value, shape[::-1]).T
    out[source] = np.ascontiguousarray(np.reshape(value, shape))
  left = [k for k in weights if "seed_generator" not in k]
  if left:
    raise ValueError(f"backbone weights not ported: {left}")
  return out


def heads_state_dict(model):
  """Every classifier's weights, PyTorch Linear layout ([out, in])."""
  out = {}
  for k, head in enumerate(model.classifiers):
    attn = head.attention
    dense = dict(input_dense=head.input_dense, pooled_dense=head.pooled_dense,
                 logits_dense=head.logits_dense)
    for name, layer in dense.items():
      out[f"c{k}.{name}.weight"] = layer.kernel.numpy().T
      out[f"c{k}.{name}.bias"] = layer.bias.numpy()
    for name, layer in (("query", attn._query_dense), ("key", attn._key_dense),  # pylint: disable=protected-access
                        ("value", attn._value_dense)):  # pylint: disable=protected-access
      kernel = layer.kernel.numpy()  # [in, heads, head_dim]
      out[f"c{k}.{name}.weight"] = kernel.reshape(kernel.shape[0], -1).T
      out[f"c{k}.{name}.bias"] = layer.bias.numpy().reshape(-1)
    kernel = attn._output_dense.kernel.numpy()  # [heads, head_dim, out]  # pylint: disable=protected-access
    out[f"c{k}.output.weight"] = kernel.reshape(-1, kernel.shape[-1]).T
    out[f"c{k}.output.bias"] = attn._output_dense.bias.numpy()  # pylint: disable=protected-access
  return {k: np.ascontiguousarray(v) for k, v in out.items()}


def hf_config(model):
  """config.json of a transformers BertModel with our backbone's shape."""
  c = architecture.flatten(model.get_config())
  return dict(model_type="bert", architectures=["BertModel"],
              vocab_size=c["vocabulary_size"], hidden_size=c["hidden_dim"],
              num_hidden_layers=c["num_layers"],
              num_attention_heads=c["num_heads"],
              intermediate_size=c["intermediate_dim"],
              hidden_act={"gelu": "gelu", "gelu_approximate": "gelu_new",
                          "relu": "relu"}[c["activation"]],
              max_position_embeddings=c["max_sequence_length"],
              type_vocab_size=c["num_segments"],
              layer_norm_eps=c["layer_norm_epsilon"],
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              pad_token_id=0)


def prepare():
  tf = _tf()
  from fastbert_tf.data import sources  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
  from fastbert_tf.export import tflite  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import single_text  # pylint: disable=g-import-not-at-top
  model, encoder = saving.load_model(FLAGS.model_dir)
  if model.backbone.layer_norm_type != "bert" or encoder.text_pair:
    raise ValueError("the peers need a single-text model with BERT LayerNorm")
  test = sources.load_split(FLAGS.data, "test")
  texts = list(test.texts_a[:FLAGS.max_samples])
  gold = [int(l) for l in test.labels[:FLAGS.max_samples]]
  work = FLAGS.workdir
  if os.path.exists(work):
    shutil.rmtree(work)
  os.makedirs(work)
  ids = {}
  for i, t in enumerate(texts):
    for k, v in encoder(tf.constant([t])).items():
      ids[f"b1_{i}_{k}"] = v.numpy()
  for j, chunk in enumerate(peers_lib.batches(texts, 32)):
    for k, v in encoder(tf.constant(chunk)).items():
      ids[f"b32_{j}_{k}"] = v.numpy()
  np.savez(os.path.join(work, "ids.npz"), **ids)
  dirs = {}
  for dispatch in ("cond", "tensor_array"):
    dirs[dispatch] = exporter.export_saved_model(
        model, encoder, os.path.join(work, f"saved_model_{dispatch}"),
        version=1, dispatch=dispatch)
  # Issue 16 part 2: the export options for one text at a time.
  for name, (dtype, buckets) in EXPORT_OPTIONS.items():
    variant, _ = saving.load_model(FLAGS.model_dir, dtype=dtype)
    exporter.export_saved_model(
        variant, encoder, os.path.join(work, f"saved_model_{name}"),
        version=1, dispatch="tensor_array",
        single_text_buckets=buckets and single_text.buckets_for(
            encoder.max_seq_length, buckets))
  # LiteRT from the xla export: one text runs the unrolled layers (IFs),
  # batches the WHILE loop.
  with open(os.path.join(work, "model_xla.tflite"), "wb") as f:
    f.write(tflite.convert(os.path.join(work, "saved_model_xla", "1")))
  with open(os.path.join(work, "model.tflite"), "wb") as f:
    f.write(tflite.convert(dirs["cond"]))
  np.savez(os.path.join(work, "hf_weights.npz"), **hf_state_dict(model))
  np.savez(os.path.join(work, "heads_weights.npz"), **heads_state_dict(model))
  signature = tf.saved_model.load(dirs["cond"]).signatures["predict_ids"]
  reference = {}
  for b in (1, 32):
    inputs = load_inputs(ids, b, len(texts))
    for s in peers_lib.SPEEDS:
      outs = [signature(speed=tf.constant(s), **f) for f in inputs]
      reference[f"b{b}s{s:g}"] = dict(
          labels=np.concatenate([o["label"] for o in outs]).tolist(),
          exit_layers=np.concatenate([o["exit_layer"] for o in outs]).tolist(),
          uncertainty=np.concatenate([o["uncertainty"] for o in outs]).tolist(),
          flops=np.concatenate([o["flops"] for o in outs]).tolist())
  c = architecture.flatten(model.get_config())
  meta = dict(texts=texts, gold=gold,
              model_dir=os.path.abspath(FLAGS.model_dir),
              num_layers=c["num_layers"], num_classes=c["num_classes"],
              vocab=os.path.abspath(os.path.join(FLAGS.model_dir,
                                                 encoder.VOCABULARY_FILE)),
              max_seq_length=encoder.max_seq_length, hf_config=hf_config(model))
  with open(os.path.join(work, "texts.json"), "w", encoding="utf-8") as f:
    json.dump(meta, f)
  with open(os.path.join(work, "reference.json"), "w", encoding="utf-8") as f:
    json.dump(reference, f)
  for s in peers_lib.SPEEDS:
    r = reference[f"b1s{s:g}"]
    acc = np.mean(np.asarray(r["labels"]) == np.asarray(gold))
    print(f"speed {s:g}: accuracy {100 * acc:.2f}% mean exit "
          f"{np.mean(r['exit_layers']):.2f} (batch 32 agrees: "
          f"{r['labels'] == reference[f'b32s{s:g}']['labels']})")


def load_inputs(ids, batch_size, n):
  """[feature dict of numpy int32] for batch size 1 or 32, in text order."""
  count = n if batch_size == 1 else math.ceil(n / batch_size)
  return [{k: np.asarray(ids[f"b{batch_size}_{i}_{k}"]) for k in IDS}
          for i in range(count)]


# Exports beside the default two, all with the tensor_array loop for
# batches: name -> (dtype policy or None, single-text XLA buckets or None).
EXPORT_OPTIONS = {
    "xla": (None, (16, 32, 64, 128)),
    # Buckets every 8-16 tokens: less padding, more compilations.
    "xla_fine": (None, (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128)),
    "bf16": ("mixed_bfloat16", None),
}


# -- workers -----------------------------------------------------------------

def read_work():
  work = FLAGS.workdir
  with open(os.path.join(work, "texts.json"), encoding="utf-8") as f:
    meta = json.load(f)
  with open(os.path.join(work, "reference.json"), encoding="utf-8") as f:
    reference = json.load(f)
  ids = dict(np.load(os.path.join(work, "ids.npz")))
  meta, reference = peers_lib.first_texts(meta, reference, FLAGS.texts)
  return meta, reference, ids


def truncated_contenders(tf, model, inputs, reference, batch_size):
  """{key: (fn, inputs)} of the hand-written floor (module docstring)."""
  layers = model.backbone.transformer_layers
  heads = model.classifiers
  num_layers, num_classes = model.num_layers, model.num_classes
  spec = [{k: tf.TensorSpec([None, None], tf.int32) for k in IDS}]
  log_n = math.log(num_classes)

  def answer(logits):
    log_p = tf.nn.log_softmax(logits)
    p = tf.exp(log_p)
    return p, -tf.reduce_sum(p * log_p, axis=-1) / log_n

  def depth_fn(k, students):
    @tf.function(input_signature=spec)
    def run(f):
      mask = tf.cast(f["padding_mask"], tf.bool)
      x = model.backbone.embed(f["token_ids"], f["segment_ids"],
                               training=False)
      out = None
      for j in range(k):
        x = layers[j](x, padding_mask=mask, training=False)
        if students or j == num_layers - 1:
          out = answer(heads[j](x, mask, training=False))
      return out
    return run

  def unrolled_fn(speed):
    students = speed > 0

    @tf.function(input_signature=spec)
    def run(f):
      mask = tf.cast(f["padding_mask"], tf.bool)
      x = model.backbone.embed(f["token_ids"], f["segment_ids"],
                               training=False)
      batch = tf.shape(x)[0]
      active = tf.range(batch)
      results = tf.zeros([batch, num_classes + 2])
      for j in range(num_layers):
        x = layers[j](x, padding_mask=mask, training=False)
        if not (students or j == num_layers - 1):
          continue
        p, u = answer(heads[j](x, mask, training=False))
        done = u < speed if j < num_layers - 1 else tf.ones_like(u, tf.bool)
        done_rows = tf.where(done)[:, 0]
        keep_rows = tf.where(tf.logical_not(done))[:, 0]
        row = tf.concat([p, u[:, None],
                         tf.fill([tf.shape(u)[0], 1], float(j + 1))], 1)
        results = tf.tensor_scatter_nd_update(
            results, tf.gather(active, done_rows)[:, None],
            tf.gather(row, done_rows))
        x, mask, active = (tf.gather(t, keep_rows) for t in (x, mask, active))
      return results
    return run

  out = {}
  for s in peers_lib.SPEEDS:
    ref = reference[f"b{batch_size}s{s:g}"]
    if batch_size == 1:
      fns = {(k, st): depth_fn(k, st) for k in range(1, num_layers + 1)
             for st in (True, False)}
      work = [(f, fns[(int(k), s > 0)])
              for f, k in zip(inputs, ref["exit_layers"])]
      out[peers_lib.key("tf", "truncated", 1, s)] = (
          lambda item: item[1](item[0]), work)
    else:
      fn = unrolled_fn(s)
      out[peers_lib.key("tf", "truncated", batch_size, s)] = (fn, inputs)
  return out


def tf_contenders(meta, reference, ids):
  """{key: (fn, inputs)} and {key: agreement} of the TF worker."""
  tf = _tf()
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model, _ = saving.load_model(meta["model_dir"])
  n = len(meta["texts"])
  sigs = {d: tf.saved_model.load(os.path.join(
      FLAGS.workdir, f"saved_model_{d}", "1")).signatures["predict_ids"]
          for d in ("cond", "tensor_array") + tuple(EXPORT_OPTIONS)}
  spec = [{k: tf.TensorSpec([None, None], tf.int32) for k in IDS}]

  @tf.function(input_signature=spec)
  def plain(f):
    hidden = model.backbone(f, training=False)[-1]
    return tf.nn.softmax(model.teacher(hidden, f["padding_mask"]))

  contenders, checks = {}, {}
  for b in (int(x) for x in FLAGS.batch_sizes):
    inputs = load_inputs(ids, b, n)
    contenders[peers_lib.key("tf", "plain", b)] = (plain, inputs)
    for d, sig in sigs.items():
      for s in peers_lib.SPEEDS:
        contenders[peers_lib.key("tf", f"saved_model_{d}", b, s)] = (
            lambda f, sig=sig, s=s: sig(speed=tf.constant(s), **f), inputs)
    contenders.update(truncated_contenders(tf, model, inputs, reference, b))
  contenders = _rename(contenders)
  for k, (fn, inputs) in contenders.items():
    checks[k] = check_tf(k, fn, inputs, reference)
  return contenders, checks


def _rename(contenders):
  """Applies --only and --family to the keys."""
  out = {}
  for k, v in contenders.items():
    family, name, b, s = peers_lib.parse_key(k)
    if FLAGS.only and name not in FLAGS.only:
      continue
    if FLAGS.family and family == "tf":
      family = FLAGS.family
    out[peers_lib.key(family, name, b, s)] = v
  return out


def check_tf(k, fn, inputs, reference):
  """Runs a TF/LiteRT contender once over its inputs and checks it."""
  _, name, b, s = peers_lib.parse_key(k)
  labels, exits = [], []
  for x in inputs:
    out = fn(x)
    if isinstance(out, dict):  # signature / LiteRT: the output contract
      labels.append(np.asarray(out["label"]))
      exits.append(np.asarray(out["exit_layer"]))
    elif isinstance(out, tuple):  # truncated, batch 1: (probabilities, u)
      labels.append(np.argmax(np.asarray(out[0]), -1))
    elif name == "plain":  # probabilities
      labels.append(np.argmax(np.asarray(out), -1))
    else:  # results rows: probabilities | uncertainty | exit layer
      out = np.asarray(out)
      labels.append(np.argmax(out[:, :-2], -1))
      exits.append(out[:, -1].astype(int))
  ref = reference[f"b{b}s{0 if s is None else s:g}"]
  labels = np.concatenate(labels)
  if name == "truncated" and b == 1:  # its depth is the reference's, by design
    return peers_lib.check_agreement(k, labels, None, ref, s)
  # bfloat16 moves uncertainties by ~1e-2: texts near the threshold may
  # exit elsewhere. Up to 5% may differ; its own accuracy is recorded.
  allowed = len(labels) // 20 if "bf16" in name else 0
  return peers_lib.check_agreement(
      k, labels, None if s is None else np.concatenate(exits), ref, s,
      max_disagreements=allowed)


def litert_contenders(meta, reference, ids):
  from fastbert_tf.export import tflite  # pylint: disable=g-import-not-at-top
  runners = {name: tflite.LiteRTRunner(
      model_path=os.path.join(FLAGS.workdir, f"{file}.tflite"),
      num_threads=FLAGS.threads)
               for name, file in (("litert", "model"),
                                  ("litert_xla", "model_xla"))}
  n = len(meta["texts"])
  contenders = {}
  for b in (int(x) for x in FLAGS.batch_sizes):
    inputs = load_inputs(ids, b, n)
    for s in peers_lib.SPEEDS:
      for name, runner in runners.items():
        contenders[peers_lib.key("litert", name, b, s)] = (
            lambda f, s=s, runner=runner: runner(speed=s, **f), inputs)
  checks = {k: check_tf(k, fn, inputs, reference)
            for k, (fn, inputs) in contenders.items()}
  return contenders, checks


def main(argv):
  del argv
  if FLAGS.mode == "prepare":
    prepare()
    return
  peers_lib.protocol_streams()
  meta, reference, ids = read_work()
  build = tf_contenders if FLAGS.runtime == "tf" else litert_contenders
  # The agreement checks ran every contender once: that is the warm-up.
  contenders, checks = build(meta, reference, ids)
  peers_lib.serve(contenders, dict(checks=checks), seed=FLAGS.seed)


if __name__ == "__main__":
  app.run(main)
