"""Issue 16 part 2, prototyped outside the library: ways to cut TensorFlow's
per-op cost on the batch-1 path, each exported as a SavedModel and timed by
bench/peers.py beside the library's exports (`--prototypes=NAME,...`).

  .venv/bin/python bench/peers.py --workers=tf --prototypes=xla_b1,fused_ta
  # export each, check the TF1 session loader and the TFLite converter:
  .venv/bin/python bench/peers_proto.py --workdir=runs/peers_ag_news/peers

Every prototype answers like the library's loop (the peers worker checks
labels and exit layers on every text) and is saved the library's way (a
tf.Module tracking plain variables, predict_ids with `speed`), so it also
loads in the TF1 session loader (`check_tf1` below; TF Serving's path).

  xla_b1: a batch of one runs as ONE XLA computation (tf.function with
    jit_compile=True): embeddings, then the layers unrolled, each inside a
    conditional taken only while the text is undecided (layer k's weights
    are its own captured variables: no dispatch, no copies), classifier and
    entropy included. The sequence is padded (mask 0) to a bucket
    (--xla_buckets, default 16/32/64/128) so XLA compiles once per bucket,
    not per length. Batches > 1 take the library's loop (tensor_array
    dispatch) through one tf.cond on the batch size, so batch 32 is
    unchanged. TF Serving runs jit_compile functions with the XLA CPU JIT
    its binary links in; the warmup requests should cover every bucket.
  fused_ta: the library's loop (same algorithm, tensor_array dispatch), with
    the transformer layer and the classifier written in fewer, larger TF
    ops: one [H, 3H] matmul for Q/K/V (the 1/sqrt(d) scale folded into the
    query weights), BatchMatMul attention, LayerNorm from moments, one
    [128, 256] matmul for the classifier's K/V and its query on [CLS] only.
    The fused weights are new variables made at export.
  xla_fused_b1: xla_b1 with fused_ta's layer and classifier bodies.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from absl import flags

from bench import peers_lib
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib

FLAGS = flags.FLAGS
flags.DEFINE_list("xla_buckets", ["16", "32", "64", "128"],
                  "Sequence lengths batch-1 XLA pads to.")

IDS = ("token_ids", "segment_ids", "padding_mask")
NAMES = ("xla_b1", "fused_ta", "xla_fused_b1")


# -- fused bodies ----------------------------------------------------------------

def _layer_norm(x, gamma, beta, eps):
  mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
  return (x - mean) * tf.math.rsqrt(var + eps) * gamma + beta


class FusedLayer(tf.Module):
  """A keras-hub TransformerEncoder's weights, fused, as plain tf.Variables."""

  def __init__(self, layer):
    super().__init__()
    attn = layer._self_attention_layer  # pylint: disable=protected-access
    h = attn._query_dense.kernel.shape[0]  # pylint: disable=protected-access
    self.heads = attn._num_heads  # pylint: disable=protected-access
    self.head_dim = attn._key_dim  # pylint: disable=protected-access
    scale = 1.0 / math.sqrt(self.head_dim)
    dense = [attn._query_dense, attn._key_dense, attn._value_dense]  # pylint: disable=protected-access
    kernels = [d.kernel.numpy().reshape(h, -1) for d in dense]
    biases = [d.bias.numpy().reshape(-1) for d in dense]
    kernels[0], biases[0] = kernels[0] * scale, biases[0] * scale
    v = lambda a: tf.Variable(np.asarray(a, np.float32), trainable=False)
    self.wqkv, self.bqkv = v(np.concatenate(kernels, 1)), v(np.concatenate(biases))
    out = attn._output_dense  # pylint: disable=protected-access
    self.wo, self.bo = v(out.kernel.numpy().reshape(-1, h)), v(out.bias.numpy())
    ln1 = layer._self_attention_layer_norm  # pylint: disable=protected-access
    ln2 = layer._feedforward_layer_norm  # pylint: disable=protected-access
    self.g1, self.b1 = v(ln1.gamma.numpy()), v(ln1.beta.numpy())
    self.g2, self.b2 = v(ln2.gamma.numpy()), v(ln2.beta.numpy())
    ff1 = layer._feedforward_intermediate_dense  # pylint: disable=protected-access
    ff2 = layer._feedforward_output_dense  # pylint: disable=protected-access
    self.w1, self.c1 = v(ff1.kernel.numpy()), v(ff1.bias.numpy())
    self.w2, self.c2 = v(ff2.kernel.numpy()), v(ff2.bias.numpy())
    self.eps = ln1.epsilon

  def slots(self):
    return [self.wqkv, self.bqkv, self.wo, self.bo, self.g1, self.b1,
            self.w1, self.c1, self.w2, self.c2, self.g2, self.b2]

  def __call__(self, x, mask_add, weights=None):
    """x float32 [b, s, h]; mask_add float32 [b, 1, 1, s] (0 or -1e9)."""
    (wqkv, bqkv, wo, bo, g1, b1, w1, c1, w2, c2, g2, b2) = (
        weights or self.slots())
    b, s = tf.shape(x)[0], tf.shape(x)[1]
    h = x.shape[-1]
    x2 = tf.reshape(x, [-1, h])
    qkv = tf.reshape(tf.matmul(x2, wqkv) + bqkv,
                     [b, s, 3, self.heads, self.head_dim])
    q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))
    probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) + mask_add)
    ctx = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [-1, h])
    y = _layer_norm(x2 + tf.matmul(ctx, wo) + bo, g1, b1, self.eps)
    f = tf.nn.gelu(tf.matmul(y, w1) + c1, approximate=False)
    y = _layer_norm(y + tf.matmul(f, w2) + c2, g2, b2, self.eps)
    return tf.reshape(y, [b, s, h])


class FusedHead(tf.Module):
  """A StudentClassifier's weights, fused: K/V in one matmul, Q on [CLS]."""

  def __init__(self, head):
    super().__init__()
    attn = head.attention
    self.heads = attn._num_heads  # pylint: disable=protected-access
    self.head_dim = attn._key_dim  # pylint: disable=protected-access
    width = self.heads * self.head_dim
    scale = 1.0 / math.sqrt(self.head_dim)
    v = lambda a: tf.Variable(np.asarray(a, np.float32), trainable=False)
    q, k, val = attn._query_dense, attn._key_dense, attn._value_dense  # pylint: disable=protected-access
    self.w_in = v(head.input_dense.kernel.numpy())
    self.b_in = v(head.input_dense.bias.numpy())
    self.wq = v(q.kernel.numpy().reshape(width, -1) * scale)
    self.bq = v(q.bias.numpy().reshape(-1) * scale)
    self.wkv = v(np.concatenate([k.kernel.numpy().reshape(width, -1),
                                 val.kernel.numpy().reshape(width, -1)], 1))
    self.bkv = v(np.concatenate([k.bias.numpy().reshape(-1),
                                 val.bias.numpy().reshape(-1)]))
    out = attn._output_dense  # pylint: disable=protected-access
    self.wo = v(out.kernel.numpy().reshape(-1, width))
    self.bo = v(out.bias.numpy())
    self.wp = v(head.pooled_dense.kernel.numpy())
    self.bp = v(head.pooled_dense.bias.numpy())
    self.wl = v(head.logits_dense.kernel.numpy())
    self.bl = v(head.logits_dense.bias.numpy())

  def slots(self):
    return [self.w_in, self.b_in, self.wq, self.bq, self.wkv, self.bkv,
            self.wo, self.bo, self.wp, self.bp, self.wl, self.bl]

  def __call__(self, x, mask_add, weights=None):
    (w_in, b_in, wq, bq, wkv, bkv, wo, bo, wp, bp, wl, bl) = (
        weights or self.slots())
    b, s = tf.shape(x)[0], tf.shape(x)[1]
    width = self.heads * self.head_dim
    t = tf.tanh(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), w_in) + b_in)
    kv = tf.reshape(tf.matmul(t, wkv) + bkv, [b, s, 2, self.heads,
                                              self.head_dim])
    k, v = tf.unstack(tf.transpose(kv, [2, 0, 3, 1, 4]))
    cls = tf.reshape(t, [b, s, width])[:, 0]
    q = tf.reshape(tf.matmul(cls, wq) + bq, [b, self.heads, 1, self.head_dim])
    probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) + mask_add)
    ctx = tf.reshape(tf.matmul(probs, v), [b, width])
    y = tf.matmul(ctx, wo) + bo
    return tf.matmul(tf.tanh(tf.matmul(y, wp) + bp), wl) + bl


def _mask_add(mask):
  """bool/int [b, s] -> float32 [b, 1, 1, s]: 0 for tokens, -1e9 for pads."""
  shape = tf.shape(mask)
  return tf.reshape((1.0 - tf.cast(mask, tf.float32)) * -1e9,
                    [shape[0], 1, 1, shape[1]])


# -- batch 1 in XLA -----------------------------------------------------------

def xla_single(model, layer_fns, head_fns, buckets):
  """fn(token_ids, segment_ids, padding_mask [1, s], speed) -> outputs of one
  text, the loop run as one XLA computation per bucket length."""
  num_layers, num_classes = model.num_layers, model.num_classes
  log_n = math.log(num_classes)

  @tf.function(jit_compile=True)
  def core(token_ids, segment_ids, padding_mask, speed):
    x = model.backbone.embed(token_ids, segment_ids, training=False)
    mask_add = _mask_add(padding_mask)
    students = speed > 0.0
    state = (x, tf.zeros([1, num_classes]), tf.zeros([1]), tf.constant(False),
             tf.constant(0))
    for k in range(num_layers):
      def run(state=state, k=k):
        x, probs, unc, _, _ = state
        y = layer_fns[k](x, mask_add)

        def classify():
          log_p = tf.nn.log_softmax(head_fns[k](y, mask_add))
          p = tf.exp(log_p)
          u = -tf.reduce_sum(p * log_p, -1) / log_n
          done = tf.logical_or(u[0] < speed, k == num_layers - 1)
          return p, u, done
        if k == num_layers - 1:
          p, u, done = classify()
        else:
          p, u, done = tf.cond(students, classify,
                               lambda: (probs, unc, tf.constant(False)))
        return y, p, u, done, tf.constant(k + 1)
      state = tf.cond(state[3], lambda state=state: state, run)
    return state[1], state[2], state[4]

  bucket_list = tf.constant(sorted(int(b) for b in buckets))

  def single(token_ids, segment_ids, padding_mask, speed):
    s = tf.shape(token_ids)[1]
    target = tf.reduce_min(tf.boolean_mask(bucket_list, bucket_list >= s))
    pad = [[0, 0], [0, target - s]]
    probs, unc, layer = core(tf.pad(token_ids, pad), tf.pad(segment_ids, pad),
                             tf.pad(padding_mask, pad), tf.reshape(speed, []))
    return probs, unc, tf.reshape(layer, [1])
  return single


# -- the fused loop -----------------------------------------------------------------

def fused_loop(model, fused_layers, fused_heads):
  """The library's early-exit algorithm with tensor_array dispatch over the
  fused bodies; fn(token_ids, segment_ids, padding_mask, speed) -> outputs."""
  num_layers, num_classes = model.num_layers, model.num_classes
  log_n = math.log(num_classes)

  def arrays(objs):
    out = []
    for j in range(len(objs[0].slots())):
      w = objs[0].slots()[j]
      a = tf.TensorArray(w.dtype, size=len(objs), element_shape=w.shape,
                         clear_after_read=False)
      for k, o in enumerate(objs):
        a = a.write(k, o.slots()[j])
      out.append(a)
    return out

  def run(token_ids, segment_ids, padding_mask, speed):
    layer_arrays, head_arrays = arrays(fused_layers), arrays(fused_heads)
    batch = tf.shape(token_ids)[0]
    speed = tf.broadcast_to(tf.reshape(speed, [-1]), [batch])
    students = tf.reduce_any(speed > 0.0)
    x = model.backbone.embed(token_ids, segment_ids, training=False)

    def body(i, x, m, active, sp, results):
      y = fused_layers[0](x, m, [a.read(i) for a in layer_arrays])

      def record():
        logits = fused_heads[0](y, m, [a.read(i) for a in head_arrays])
        log_p = tf.nn.log_softmax(logits)
        p = tf.exp(log_p)
        u = -tf.reduce_sum(p * log_p, -1) / log_n
        done = tf.logical_or(u < sp, tf.equal(i, num_layers - 1))
        done_rows = tf.where(done)[:, 0]
        keep_rows = tf.where(tf.logical_not(done))[:, 0]
        layer = tf.fill([tf.shape(u)[0], 1], tf.cast(i + 1, tf.float32))
        answer = tf.concat([p, u[:, None], layer], axis=1)
        new = tf.tensor_scatter_nd_update(
            results, tf.gather(active, done_rows)[:, None],
            tf.gather(answer, done_rows))
        keep = lambda t: tf.gather(t, keep_rows)
        return keep(y), keep(m), keep(active), keep(sp), new
      y, m, active, sp, results = tf.cond(
          tf.logical_or(students, tf.equal(i, num_layers - 1)), record,
          lambda: (y, m, active, sp, results))
      return i + 1, y, m, active, sp, results

    h = x.shape[-1]
    _, _, _, _, _, results = tf.while_loop(
        lambda i, x, m, active, *_: tf.logical_and(i < num_layers,
                                                   tf.size(active) > 0),
        body, (tf.constant(0), x, _mask_add(padding_mask), tf.range(batch),
               speed, tf.zeros([batch, num_classes + 2])),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, h]),
                          tf.TensorShape([None, 1, 1, None]),
                          tf.TensorShape([None]), tf.TensorShape([None]),
                          tf.TensorShape([None, num_classes + 2])))
    return (results[:, :num_classes], results[:, num_classes],
            tf.cast(results[:, num_classes + 1], tf.int32))
  return run


# -- export ---------------------------------------------------------------------

class ProtoModule(tf.Module):
  """predict_ids like the library's ServingModule, over a prototype."""

  def __init__(self, model, name, buckets):
    super().__init__(name="fastbert_proto")
    self.model_variables = [v.value for v in model.variables]
    table = flops_lib.flops_table(model.get_config(),
                                  model.get_config()["max_sequence_length"])
    keras_layers = [
        (lambda x, m, l=l: l(x, padding_mask=_bool_mask(m), training=False))
        for l in model.backbone.transformer_layers]
    keras_heads = [(lambda x, m, c=c: c(x, _bool_mask(m), training=False))
                   for c in model.classifiers]
    if name in ("fused_ta", "xla_fused_b1"):
      self.fused_layers = [FusedLayer(l) for l in
                           model.backbone.transformer_layers]
      self.fused_heads = [FusedHead(c) for c in model.classifiers]
    num_classes = model.num_classes

    def library(token_ids, segment_ids, padding_mask, speed):
      out = early_exit.early_exit(model, token_ids, segment_ids, padding_mask,
                                  speed, table, dispatch="tensor_array")
      return out["probabilities"], out["uncertainty"], out["exit_layer"]

    if name == "fused_ta":
      classify = fused_loop(model, self.fused_layers, self.fused_heads)
    else:
      layers, heads = ((keras_layers, keras_heads) if name == "xla_b1" else
                       (self.fused_layers, self.fused_heads))
      single = xla_single(model, layers, heads, buckets)

      def classify(token_ids, segment_ids, padding_mask, speed):
        return tf.cond(tf.equal(tf.shape(token_ids)[0], 1),
                       lambda: single(token_ids, segment_ids, padding_mask,
                                      speed),
                       lambda: library(token_ids, segment_ids, padding_mask,
                                       speed))

    def predict_ids(token_ids, segment_ids, padding_mask, speed):
      probs, unc, layer = classify(token_ids, segment_ids, padding_mask, speed)
      probs = tf.reshape(probs, [-1, num_classes])
      return dict(probabilities=probs,
                  label=tf.argmax(probs, -1, output_type=tf.int32),
                  exit_layer=layer, uncertainty=unc)

    self.predict_ids = tf.function(predict_ids, input_signature=[
        tf.TensorSpec([None, None], tf.int32, name=n) for n in IDS] + [
            tf.TensorSpec(None, tf.float32, name="speed")])


def _bool_mask(mask):
  """The Keras layers take the padding mask as bool [b, s]; the prototypes
  carry it as the additive [b, 1, 1, s] form."""
  return mask[:, 0, 0, :] > -1.0 if mask.shape.rank == 4 else tf.cast(
      mask, tf.bool)


def export(model, name, directory, buckets=None):
  """Saves prototype `name` as a SavedModel; returns its directory."""
  module = ProtoModule(model, name, buckets or FLAGS.xla_buckets)
  tf.saved_model.save(module, directory, signatures={
      "predict_ids": module.predict_ids.get_concrete_function()})
  return directory


def check_tf1(directory, features, speed):
  """Runs predict_ids through the TF1 session loader (TF Serving's path);
  returns its labels and exit layers."""
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], directory)
    sig = meta.signature_def["predict_ids"]
    feed = {sig.inputs[k].name: v for k, v in features.items()}
    feed[sig.inputs["speed"].name] = np.float32(speed)
    out = sess.run({k: sig.outputs[k].name for k in ("label", "exit_layer")},
                   feed)
  return out


_CACHE = {}


def contenders(names, model, inputs, batch_size, workdir):
  """{key: (fn, inputs)} for the peers TF worker, one per speed and name."""
  out = {}
  for name in names:
    if name not in NAMES:
      raise ValueError(f"unknown prototype {name!r}; known: {NAMES}")
    if name not in _CACHE:
      directory = os.path.join(workdir, "proto", name)
      if not os.path.exists(directory):  # written aside, then renamed
        export(model, name, directory + f".tmp{os.getpid()}")
        os.rename(directory + f".tmp{os.getpid()}", directory)
      _CACHE[name] = tf.saved_model.load(directory).signatures["predict_ids"]
    sig = _CACHE[name]
    for s in peers_lib.SPEEDS:
      out[peers_lib.key("proto", name, batch_size, s)] = (
          lambda f, sig=sig, s=s: sig(speed=tf.constant(s), **f), inputs)
  return out


def tflite_convertible(directory):
  """Whether the TFLite converter takes the prototype's predict_ids (with
  builtin ops only); returns (bool, message)."""
  try:
    converter = tf.lite.TFLiteConverter.from_saved_model(
        directory, signature_keys=["predict_ids"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    return True, f"{len(content)} bytes"
  except Exception as e:  # pylint: disable=broad-except
    return False, str(e)[-600:]



def main(argv):
  """Exports every prototype into <workdir>/proto/ and checks each: the
  TF1 session loader answers as the TF2 loader on the first texts, and
  whether the TFLite converter takes it. Records go to --proto_output."""
  del argv
  import json  # pylint: disable=g-import-not-at-top
  from bench import common  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  with open(os.path.join(FLAGS.workdir, "texts.json"), encoding="utf-8") as f:
    meta = json.load(f)
  model, _ = saving.load_model(meta["model_dir"])
  ids = dict(np.load(os.path.join(FLAGS.workdir, "ids.npz")))
  records = []
  for name in FLAGS.proto_names:
    directory = os.path.join(FLAGS.workdir, "proto", name)
    if not os.path.exists(directory):
      export(model, name, directory)
    sig = tf.saved_model.load(directory).signatures["predict_ids"]
    agree = 0
    for i in range(FLAGS.proto_texts):
      f = {k: ids[f"b1_{i}_{k}"] for k in IDS}
      tf2 = sig(speed=tf.constant(0.5), **f)
      tf1 = check_tf1(directory, f, 0.5)
      agree += int(tf1["label"][0] == tf2["label"][0] and
                   tf1["exit_layer"][0] == tf2["exit_layer"][0])
    ok, message = tflite_convertible(directory)
    records.append(common.record(
        benchmark="peers_proto", prototype=name, tf1_loader_agrees=agree,
        texts=FLAGS.proto_texts, tflite_converts=ok, tflite_message=message))
    print(f"{name}: TF1 loader agrees on {agree}/{FLAGS.proto_texts}; "
          f"TFLite: {ok} ({message[-300:]})")
  common.write_records(FLAGS.proto_output,
                       common.read_records(FLAGS.proto_output) + records)


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", "runs/peers_ag_news/peers", "Work directory.")
  flags.DEFINE_list("proto_names", list(NAMES), "Prototypes to check.")
  flags.DEFINE_integer("proto_texts", 3, "Texts run through the TF1 loader.")
  flags.DEFINE_string("proto_output", "bench/results/peers_proto.json",
                      "Records.")
  app.run(main)
