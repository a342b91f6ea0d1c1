"""The PyTorch and ONNX Runtime side of bench/peers.py. Run from .venv-peers
(bench/requirements-peers.txt), after `bench/peers_tf.py --mode=prepare`.

  .venv-peers/bin/python bench/peers_torch.py --mode=export_onnx \
      --workdir=runs/peers_ag_news/peers
  # workers are started by bench/peers.py:
  .venv-peers/bin/python bench/peers_torch.py --mode=worker --runtime=torch
  .venv-peers/bin/python bench/peers_torch.py --mode=worker --runtime=ort

Every contender runs our trained weights (prepare's hf_weights.npz and
heads_weights.npz) on our tokenizer's ids (ids.npz), except the authors'
package, which tokenizes for itself (its ids are checked equal to ours):
  torch/hf_full: transformers BertModel + our teacher head re-implemented in
    PyTorch (`Head`), the full model;
  torch/hf_exit: the same modules in an early-exit loop written the obvious
    way in PyTorch (batch 1: stop at the first confident layer; batch 32:
    drop answered rows after each classifier), per speed;
  torch/fastbert_padded: the authors' `fastbert` 0.2.2 package as shipped
    (FastBERT.forward(sentence, speed): its tokenizer, every text padded to
    128 tokens, batch 1 only), our weights ported into it;
  torch/fastbert_unpadded: the same with its padding removed (a subclass
    whose _convert_to_id_and_mask stops before the padding);
  ort/plain, ort/fused: the full model (hf_full) exported to ONNX
    (torch.onnx, TorchScript exporter), and that file after
    onnxruntime.transformers.optimizer (Attention, SkipLayerNormalization,
    EmbedLayerNormalization, BiasGelu fusions), each in an InferenceSession.

Porting into the authors' package (read from its source): its model is
built without the download by `is_load=False` and a model config of our
shape registered in fastbert.config.MODEL_CONFIG_FILE; UER's LayerNorm is
`gamma * (x - mean) / (std_unbiased + 1e-6) + beta`, so each gamma is
multiplied by sqrt(n / (n - 1)) to give BERT's LayerNorm (eps 1e-12 inside
the sqrt) up to ~1e-6 relative; its forward feeds the padding mask as
segment ids (1 for every real token), so its segment row 1 gets our segment
row 0; its input framing is `[CLS] tokens` (no [SEP]), so each text gets
" [SEP]" appended (a never-split token of its tokenizer); a text our
tokenizer cut to --max_seq_length is given as the word pieces we kept,
re-joined (`fastbert_sentences`), since the package would cut after 128
pieces and lose [SEP], which moves its uncertainties by ~0.01 and an exit
near a threshold.
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app
from absl import flags

from bench import peers_lib

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "worker", ["export_onnx", "worker"], "What to do.")
flags.DEFINE_enum("runtime", "torch", ["torch", "ort"], "Worker runtime.")
flags.DEFINE_string("workdir", "runs/peers_ag_news/peers", "Work directory.")
flags.DEFINE_integer("threads", 2, "Intra-op threads.")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes timed.")
flags.DEFINE_integer("seed", 0, "Order of contenders within a group.")
flags.DEFINE_integer("texts", 0, "Use the first N texts only (0: all).")

IDS = ("token_ids", "segment_ids", "padding_mask")
FASTBERT_KERNEL = "fastbert_tf_peers"


def read_work():
  work = FLAGS.workdir
  with open(os.path.join(work, "texts.json"), encoding="utf-8") as f:
    meta = json.load(f)
  with open(os.path.join(work, "reference.json"), encoding="utf-8") as f:
    reference = json.load(f)
  ids = dict(np.load(os.path.join(work, "ids.npz")))
  meta, reference = peers_lib.first_texts(meta, reference, FLAGS.texts)
  return meta, reference, ids


def load_inputs(ids, batch_size, n):
  """[dict of int64 numpy [b, seq]] in text order (batch 1: no padding)."""
  count = n if batch_size == 1 else math.ceil(n / batch_size)
  return [{k: ids[f"b{batch_size}_{i}_{k}"].astype(np.int64) for k in IDS}
          for i in range(count)]


# -- PyTorch -------------------------------------------------------------------

_THREADS_SET = []


def _torch():
  import torch  # pylint: disable=g-import-not-at-top
  if not _THREADS_SET:  # once: torch refuses a second interop setting
    torch.set_num_threads(FLAGS.threads)
    torch.set_num_interop_threads(1)
    _THREADS_SET.append(True)
  return torch


def build_torch_models(meta, attn_implementation=None):
  """(BertModel, [Head] * L) holding our weights, in eval mode;
  attn_implementation as transformers takes it (None: its default, sdpa)."""
  torch = _torch()
  from torch import nn  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  class Head(nn.Module):
    """Our StudentClassifier in PyTorch: Dense -> tanh -> 2-head attention
    with the [CLS] position as the only query -> Dense -> tanh -> Dense."""

    def __init__(self, hidden, classes, width=128, heads=2):
      super().__init__()
      self.heads, self.head_dim = heads, width // heads
      self.input_dense = nn.Linear(hidden, width)
      self.query, self.key, self.value, self.output = (
          nn.Linear(width, width) for _ in range(4))
      self.pooled_dense = nn.Linear(width, width)
      self.logits_dense = nn.Linear(width, classes)

    def forward(self, h, padding_mask=None):
      """h float [b, s, hidden], padding_mask int/bool [b, s] or None."""
      x = torch.tanh(self.input_dense(h))
      b, s, _ = x.shape
      q = self.query(x[:, :1]).view(b, 1, self.heads, self.head_dim)
      k = self.key(x).view(b, s, self.heads, self.head_dim)
      v = self.value(x).view(b, s, self.heads, self.head_dim)
      scores = torch.einsum("bqhd,bkhd->bhqk", q / math.sqrt(self.head_dim),
                            k)
      if padding_mask is not None:
        scores = scores + (1.0 - padding_mask[:, None, None, :].to(
            scores.dtype)) * -1e9
      ctx = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, -1), v)
      y = self.output(ctx.reshape(b, 1, -1))[:, 0]
      return self.logits_dense(torch.tanh(self.pooled_dense(y)))

  config = transformers.BertConfig(**meta["hf_config"])
  if attn_implementation:
    config._attn_implementation = attn_implementation  # pylint: disable=protected-access
  bert = transformers.BertModel(config, add_pooling_layer=False)
  state = {k: torch.from_numpy(v) for k, v in
           np.load(os.path.join(FLAGS.workdir, "hf_weights.npz")).items()}
  missing, unexpected = bert.load_state_dict(state, strict=False)
  missing = [m for m in missing if not m.endswith("_ids")]  # index buffers
  if missing or unexpected:
    raise ValueError(f"HF port: missing {missing}, unexpected {unexpected}")
  heads_state = np.load(os.path.join(FLAGS.workdir, "heads_weights.npz"))
  heads = []
  for k in range(meta["num_layers"]):
    head = Head(config.hidden_size, meta["num_classes"])
    prefix = f"c{k}."
    head.load_state_dict({n[len(prefix):]: torch.from_numpy(v) for n, v in
                          heads_state.items() if n.startswith(prefix)},
                         strict=True)
    heads.append(head.eval())
  return bert.eval(), heads


def _uncertainty(torch, logits):
  log_p = torch.log_softmax(logits, -1)
  p = log_p.exp()
  return p, -(p * log_p).sum(-1) / math.log(logits.shape[-1])


def hf_functions(bert, heads):
  """(full(f) -> logits, exit(f, speed) -> (labels, exit layers))."""
  torch = _torch()
  layers = bert.encoder.layer
  num_layers = len(layers)

  def mask4d(mask, hidden):
    # transformers' own mask for its attention implementation (sdpa).
    return bert._create_attention_masks(  # pylint: disable=protected-access
        attention_mask=mask, encoder_attention_mask=None,
        embedding_output=hidden, encoder_hidden_states=None, cache=None)[0]

  @torch.inference_mode()
  def full(f):
    h = bert(input_ids=f["token_ids"], attention_mask=f["padding_mask"],
             token_type_ids=f["segment_ids"]).last_hidden_state
    return heads[-1](h, f["padding_mask"])

  @torch.inference_mode()
  def early_exit(f, speed):
    mask = f["padding_mask"]
    h = bert.embeddings(input_ids=f["token_ids"],
                        token_type_ids=f["segment_ids"])
    b = h.shape[0]
    if b == 1:  # the authors' way: one text, stop at the first sure layer
      for i in range(num_layers):
        h = layers[i](h, None)
        if speed > 0 or i == num_layers - 1:
          p, u = _uncertainty(torch, heads[i](h))
          if u.item() < speed:
            break
      return p.argmax(-1), torch.tensor([i + 1])
    labels = torch.zeros(b, dtype=torch.long)
    exits = torch.zeros(b, dtype=torch.long)
    active = torch.arange(b)
    for i in range(num_layers):
      h = layers[i](h, mask4d(mask, h))
      if not (speed > 0 or i == num_layers - 1):
        continue
      p, u = _uncertainty(torch, heads[i](h, mask))
      done = (u < speed) | (i == num_layers - 1)
      labels[active[done]] = p[done].argmax(-1)
      exits[active[done]] = i + 1
      keep = ~done
      h, mask, active = h[keep], mask[keep], active[keep]
      if active.numel() == 0:
        break
    return labels, exits

  return full, early_exit


def fastbert_models(meta, bert_state):
  """The authors' FastBERT, as shipped and with its padding removed, both
  holding our weights (module docstring: how they are ported)."""
  torch = _torch()
  import fastbert  # pylint: disable=g-import-not-at-top
  from fastbert import config as fastbert_config  # pylint: disable=g-import-not-at-top
  c = meta["hf_config"]
  path = os.path.join(FLAGS.workdir, "fastbert_kernel.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(dict(emb_size=c["hidden_size"], hidden_size=c["hidden_size"],
                   feedforward_size=c["intermediate_size"],
                   heads_num=c["num_attention_heads"],
                   layers_num=c["num_hidden_layers"], dropout=0.1,
                   embedding="bert", encoder="bert", pooling="first",
                   vocab_path=meta["vocab"],
                   pretrained_model_path="never_loaded.bin"), f)
  fastbert_config.MODEL_CONFIG_FILE[FASTBERT_KERNEL] = path

  class Unpadded(fastbert.FastBERT):
    """FastBERT without its padding to seq_length."""

    def _convert_to_id_and_mask(self, sentence):
      ids = [self.cls_id] + [self.vocab.get(t) for t in
                             self.tokenizer.tokenize(sentence)]
      ids = ids[:self.args.seq_length]
      return ids, [1] * len(ids)

  labels = list(range(meta["num_classes"]))
  state = fastbert_state(meta, bert_state)
  models = {}
  for name, cls in (("fastbert_padded", fastbert.FastBERT),
                    ("fastbert_unpadded", Unpadded)):
    m = cls(FASTBERT_KERNEL, labels, seq_length=meta["max_seq_length"],
            device="cpu", is_load=False)
    missing, unexpected = m.load_state_dict(
        {k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.startswith("kernel.target.")]
    if missing or unexpected:
      raise ValueError(f"fastbert port: missing {missing}, unexpected "
                       f"{unexpected}")
    models[name] = m.eval()
  return models


def fastbert_state(meta, hf):
  """HF BertModel + heads state (numpy) -> the authors' FastBERT names."""
  n = meta["hf_config"]["hidden_size"]
  scale = math.sqrt(n / (n - 1.0))  # unbiased std -> biased, see docstring
  out = {}

  def norm(target, source):
    out[target + ".gamma"] = hf[source + ".weight"] * scale
    out[target + ".beta"] = hf[source + ".bias"]

  def linear(target, source):
    out[target + ".weight"] = hf[source + ".weight"]
    out[target + ".bias"] = hf[source + ".bias"]

  e = "kernel.embedding."
  out[e + "word_embedding.weight"] = hf["embeddings.word_embeddings.weight"]
  out[e + "position_embedding.weight"] = hf[
      "embeddings.position_embeddings.weight"]
  seg = hf["embeddings.token_type_embeddings.weight"]
  # Its segment ids are the padding mask (0 pad, 1 real) or 1/2 for pairs.
  out[e + "segment_embedding.weight"] = np.stack([seg[0], seg[0], seg[1]])
  norm(e + "layer_norm", "embeddings.LayerNorm")
  for i in range(meta["num_layers"]):
    t, s = f"kernel.encoder.transformer.{i}.", f"encoder.layer.{i}."
    for j, name in enumerate(("query", "key", "value")):
      linear(t + f"self_attn.linear_layers.{j}", s + f"attention.self.{name}")
    linear(t + "self_attn.final_linear", s + "attention.output.dense")
    norm(t + "layer_norm_1", s + "attention.output.LayerNorm")
    linear(t + "feed_forward.linear_1", s + "intermediate.dense")
    linear(t + "feed_forward.linear_2", s + "output.dense")
    norm(t + "layer_norm_2", s + "output.LayerNorm")
  heads = np.load(os.path.join(FLAGS.workdir, "heads_weights.npz"))
  for k in range(meta["num_layers"]):
    t, s = f"classifiers.{k}.", f"c{k}."
    for target, source in (("output_layer_0", "input_dense"),
                           ("self_atten.linear_layers.0", "query"),
                           ("self_atten.linear_layers.1", "key"),
                           ("self_atten.linear_layers.2", "value"),
                           ("self_atten.final_linear", "output"),
                           ("output_layer_1", "pooled_dense"),
                           ("output_layer_2", "logits_dense")):
      out[t + target + ".weight"] = heads[s + source + ".weight"]
      out[t + target + ".bias"] = heads[s + source + ".bias"]
  return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def torch_contenders(meta, reference, ids):
  torch = _torch()
  bert, heads = build_torch_models(meta)
  full, early_exit = hf_functions(bert, heads)
  n = len(meta["texts"])
  contenders, checks = {}, {}
  for b in (int(x) for x in FLAGS.batch_sizes):
    inputs = [{k: torch.from_numpy(v) for k, v in f.items()}
              for f in load_inputs(ids, b, n)]
    k = peers_lib.key("torch", "hf_full", b)
    contenders[k] = (full, inputs)
    labels = np.concatenate([full(f).argmax(-1).numpy() for f in inputs])
    checks[k] = peers_lib.check_agreement(k, labels, None,
                                          reference[f"b{b}s0"], None)
    for s in peers_lib.SPEEDS:
      k = peers_lib.key("torch", "hf_exit", b, s)
      contenders[k] = (lambda f, s=s: early_exit(f, s), inputs)
      outs = [early_exit(f, s) for f in inputs]
      checks[k] = peers_lib.check_agreement(
          k, np.concatenate([o[0].numpy() for o in outs]),
          np.concatenate([o[1].numpy() for o in outs]),
          reference[f"b{b}s{s:g}"], s)
  if 1 in (int(x) for x in FLAGS.batch_sizes):
    hf_state = {k: v for k, v in
                np.load(os.path.join(FLAGS.workdir, "hf_weights.npz")).items()}
    models = fastbert_models(meta, hf_state)
    sentences = fastbert_sentences(meta, ids)
    checks["fastbert_token_ids"] = check_fastbert_ids(
        models["fastbert_unpadded"], sentences, ids)
    for name, m in models.items():
      for s in peers_lib.SPEEDS:
        k = peers_lib.key("torch", name, 1, s)
        contenders[k] = (lambda t, m=m, s=s: m(t, speed=s), sentences)
        outs = [m(t, speed=s) for t in sentences]
        checks[k] = peers_lib.check_agreement(
            k, [o[0] for o in outs], [o[1] for o in outs],
            reference[f"b1s{s:g}"], s)
    m = models["fastbert_unpadded"]
    checks["fastbert_tokenizer_seconds_per_pass"] = peers_lib.time_pass(
        m._convert_to_id_and_mask, sentences)  # pylint: disable=protected-access
  return contenders, checks


def fastbert_sentences(meta, ids):
  """The texts as the authors' package gets them: text + " [SEP]" (its
  framing is [CLS] text), or, for a text our tokenizer cut to
  max_seq_length, our kept pieces re-joined ("##" pieces glued back) + "
  [SEP]", so its ids are ours (check_fastbert_ids checks that)."""
  with open(meta["vocab"], encoding="utf-8") as f:
    vocab = [line.rstrip("\n") for line in f]
  out = []
  for i, t in enumerate(meta["texts"]):
    ours = ids[f"b1_{i}_token_ids"][0].tolist()
    if len(ours) < meta["max_seq_length"]:
      out.append(t + " [SEP]")
      continue
    pieces = " ".join(vocab[j] for j in ours[1:-1]).replace(" ##", "")
    out.append(pieces + " [SEP]")
  return out


def check_fastbert_ids(model, sentences, ids):
  """The authors' tokenizer gives our token ids on every text, except that
  on a text longer than the model's 128 tokens it cuts after 128 pieces
  where ours keeps [SEP] last (its framing has no [SEP]): the first 127
  then agree and the last differs (fastbert_sentences now avoids that
  case; the count is kept in the record). The labels and exit layers are
  checked on every text all the same."""
  exact, truncated, bad = 0, [], []
  for i, t in enumerate(sentences):
    theirs, _ = model._convert_to_id_and_mask(t)  # pylint: disable=protected-access
    ours = ids[f"b1_{i}_token_ids"][0].tolist()
    if theirs == ours:
      exact += 1
    elif (len(theirs) == len(ours) == model.args.seq_length and
          theirs[:-1] == ours[:-1]):
      truncated.append(i)
    else:
      bad.append(i)
  if bad:
    raise peers_lib.AgreementError(
        f"the authors' tokenizer differs from ours on texts {bad[:10]} "
        f"({len(bad)} of {len(sentences)})")
  return dict(texts=len(sentences), token_ids_equal=exact,
              truncated_last_token_differs=truncated)


# -- ONNX ------------------------------------------------------------------------

def export_onnx():
  """plain.onnx (torch.onnx of hf_full) and fused.onnx (after the
  onnxruntime.transformers optimizer) into the work directory."""
  torch = _torch()
  meta, _, ids = read_work()
  # The eager attention exports as MatMul/Softmax/MatMul, the pattern the
  # optimizer fuses into Attention (sdpa's export is not recognised).
  bert, heads = build_torch_models(meta, attn_implementation="eager")

  class Full(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.bert, self.head = bert, heads[-1]

    def forward(self, token_ids, segment_ids, padding_mask):
      h = self.bert(input_ids=token_ids, attention_mask=padding_mask,
                    token_type_ids=segment_ids).last_hidden_state
      return self.head(h, padding_mask)

  example = load_inputs(ids, 32, len(meta["texts"]))[0]
  args = tuple(torch.from_numpy(example[k]) for k in IDS)
  plain = os.path.join(FLAGS.workdir, "plain.onnx")
  axes = {k: {0: "batch", 1: "seq"} for k in IDS}
  axes["logits"] = {0: "batch"}
  with torch.inference_mode():
    torch.onnx.export(Full().eval(), args, plain, input_names=list(IDS),
                      output_names=["logits"], dynamic_axes=axes,
                      opset_version=17, dynamo=False)
  from onnxruntime.transformers import optimizer  # pylint: disable=g-import-not-at-top
  c = meta["hf_config"]
  fused = optimizer.optimize_model(plain, model_type="bert",
                                   num_heads=c["num_attention_heads"],
                                   hidden_size=c["hidden_size"])
  fused.save_model_to_file(os.path.join(FLAGS.workdir, "fused.onnx"))
  print("fused operators:", json.dumps(fused.get_fused_operator_statistics()))


def ort_contenders(meta, reference, ids):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  n = len(meta["texts"])
  contenders, checks = {}, {}
  for name in ("plain", "fused"):
    options = ort.SessionOptions()
    options.intra_op_num_threads = FLAGS.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        os.path.join(FLAGS.workdir, f"{name}.onnx"), options,
        providers=["CPUExecutionProvider"])
    for b in (int(x) for x in FLAGS.batch_sizes):
      inputs = load_inputs(ids, b, n)
      k = peers_lib.key("ort", name, b)
      fn = lambda f, session=session: session.run(None, f)[0]
      contenders[k] = (fn, inputs)
      labels = np.concatenate([fn(f).argmax(-1) for f in inputs])
      checks[k] = peers_lib.check_agreement(k, labels, None,
                                            reference[f"b{b}s0"], None)
  return contenders, checks


def main(argv):
  del argv
  if FLAGS.mode == "export_onnx":
    export_onnx()
    return
  peers_lib.protocol_streams()
  meta, reference, ids = read_work()
  build = torch_contenders if FLAGS.runtime == "torch" else ort_contenders
  # The agreement checks ran every contender once: that is the warm-up.
  contenders, checks = build(meta, reference, ids)
  peers_lib.serve(contenders, dict(checks=checks), seed=FLAGS.seed)


if __name__ == "__main__":
  app.run(main)
