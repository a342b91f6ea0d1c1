"""UER-py state dicts: the FastBERT authors' `.bin` checkpoints (torch extra).

What differs from Google/HF BERT, and how each difference is carried:
  * LayerNorm is `gamma * (x - mean) / (std + 1e-6) + beta` with the
    unbiased std: the backbone must be built with `layer_norm_type="uer"`
    (architecture says so), never approximated by Keras' LayerNorm.
  * The segment table has 3 rows: 0 = padding, 1 = first, 2 = second
    segment (num_segments=3). Token packing is the tokenizer's business:
    UER feeds `[CLS] tokens` without a trailing [SEP] for one sentence and
    segment ids 1/2 (0 on padding); read_info says input_format="uer", and
    the TextEncoder built from it packs that way.
  * Positions are a 512-row table (UER hard-codes it); GELU is the erf form.
Names are UER-py's of the FastBERT era (`embedding.word_embedding.weight`,
`encoder.transformer.{i}.self_attn.linear_layers.{0,1,2}.weight`...),
optionally under `kernel.` (the `fastbert` pip package's saved models) or
`module.` (DataParallel). Linear weights are PyTorch [out, in].
"""

import os

from fastbert_tf.checkpoints import base
from fastbert_tf.checkpoints import files

FORMAT = "uer"
NEEDS = ("a UER-py .bin state dict (the file, or a directory holding one) "
         "with a UER config json (emb_size, hidden_size, feedforward_size, "
         "heads_num, layers_num) and a vocab .txt beside it; reading it "
         "needs torch")

_LAYER = "{prefix}encoder.transformer.{i}."
MAP = {
    "embeddings/token_embedding/embeddings":
        ("{prefix}embedding.word_embedding.weight", "same"),
    "embeddings/position_embedding/embeddings":
        ("{prefix}embedding.position_embedding.weight", "same"),
    "embeddings/segment_embedding/embeddings":
        ("{prefix}embedding.segment_embedding.weight", "same"),
    "embeddings/embeddings_layer_norm/gamma":
        ("{prefix}embedding.layer_norm.gamma", "same"),
    "embeddings/embeddings_layer_norm/beta":
        ("{prefix}embedding.layer_norm.beta", "same"),
    "transformer_layer_{i}/self_attention_layer/query/kernel":
        (_LAYER + "self_attn.linear_layers.0.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/query/bias":
        (_LAYER + "self_attn.linear_layers.0.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/key/kernel":
        (_LAYER + "self_attn.linear_layers.1.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/key/bias":
        (_LAYER + "self_attn.linear_layers.1.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/value/kernel":
        (_LAYER + "self_attn.linear_layers.2.weight", "kernel_t"),
    "transformer_layer_{i}/self_attention_layer/value/bias":
        (_LAYER + "self_attn.linear_layers.2.bias", "flat"),
    "transformer_layer_{i}/self_attention_layer/attention_output/kernel":
        (_LAYER + "self_attn.final_linear.weight", "out_kernel_t"),
    "transformer_layer_{i}/self_attention_layer/attention_output/bias":
        (_LAYER + "self_attn.final_linear.bias", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/gamma":
        (_LAYER + "layer_norm_1.gamma", "same"),
    "transformer_layer_{i}/self_attention_layer_norm/beta":
        (_LAYER + "layer_norm_1.beta", "same"),
    "transformer_layer_{i}/feedforward_intermediate_dense/kernel":
        (_LAYER + "feed_forward.linear_1.weight", "kernel_t"),
    "transformer_layer_{i}/feedforward_intermediate_dense/bias":
        (_LAYER + "feed_forward.linear_1.bias", "same"),
    "transformer_layer_{i}/feedforward_output_dense/kernel":
        (_LAYER + "feed_forward.linear_2.weight", "kernel_t"),
    "transformer_layer_{i}/feedforward_output_dense/bias":
        (_LAYER + "feed_forward.linear_2.bias", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/gamma":
        (_LAYER + "layer_norm_2.gamma", "same"),
    "transformer_layer_{i}/feedforward_layer_norm/beta":
        (_LAYER + "layer_norm_2.beta", "same"),
}

UNUSED = (
    (r"(module\.)?(kernel\.)?target\..*",
     "UER pre-training target (MLM/NSP heads)"),
    (r"(module\.)?classifiers\.\d+\..*", "the authors' FastBERT classifiers"),
    (r"(module\.)?output_layer_[12]\.(weight|bias)",
     "UER run_classifier task head"),
)

_WORDS = "embedding.word_embedding.weight"
_CONFIG_KEYS = ("emb_size", "hidden_size", "feedforward_size", "heads_num",
                "layers_num")


def matches(path):
  try:
    _find_files(path)
  except ValueError:
    return False
  return True


def read_info(path):
  """The UER config json + vocab -> CheckpointInfo (lowercase: UER's BERT
  tokenizer lower-cases; input format "uer")."""
  _, config_path, vocab_path = _find_files(path)
  config = files.read_json(config_path)

  def get(key):
    return files.field(config, key, config_path)

  if get("emb_size") != get("hidden_size"):
    raise ValueError(f"{config_path}: emb_size {get('emb_size')} != "
                     f"hidden_size {get('hidden_size')}; factorised "
                     "embeddings are not supported")
  if vocab_path is None:
    raise ValueError(f"{config_path}: no vocab file beside it (its "
                     "vocabulary size is the vocab's line count)")
  architecture = dict(
      vocabulary_size=files.count_vocab(vocab_path),
      num_layers=get("layers_num"), num_heads=get("heads_num"),
      hidden_dim=get("hidden_size"), intermediate_dim=get("feedforward_size"),
      max_sequence_length=512, num_segments=3, layer_norm_epsilon=1e-6,
      activation="gelu", layer_norm_type="uer")
  return base.CheckpointInfo(FORMAT, architecture, vocab_path, True,
                             input_format="uer")


def load_tensors(path):
  """-> TensorSource over the torch-loaded state dict."""
  bin_path, _, _ = _find_files(path)
  return base.TensorSource.from_arrays(files.load_torch_state_dict(bin_path))


def table(source):
  """-> (MAP, UNUSED, fields), the name prefix found from the embeddings."""
  prefixes = [n[:-len(_WORDS)] for n in source.shapes if n.endswith(_WORDS)]
  if len(prefixes) != 1 or prefixes[0] not in (
      "", "kernel.", "module.", "module.kernel."):
    raise base.CheckpointMismatchError(
        f"expected one '[kernel.|module.]{_WORDS}' tensor, found "
        f"{sorted(p + _WORDS for p in prefixes)}; names look like "
        f"{sorted(source.shapes)[:8]}")
  return MAP, UNUSED, dict(prefix=prefixes[0])


def _find_files(path):
  """-> (the .bin, the UER config json, the vocab or None); ValueError
  explains what is missing."""
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  names = files.listing(directory) if os.path.isdir(directory) else []
  if os.path.isdir(path):
    bins = [n for n in names if n.endswith(".bin") and
            n != "pytorch_model.bin"]
  elif path.endswith(".bin") and os.path.basename(path) != "pytorch_model.bin":
    bins = [os.path.basename(path)]
  else:
    bins = []
  configs = [n for n in names if n.endswith(".json") and
             all(k in _read_or_empty(os.path.join(directory, n))
                 for k in _CONFIG_KEYS)]
  if len(bins) != 1 or len(configs) != 1:
    raise ValueError(f"{path}: a UER checkpoint needs one .bin and one UER "
                     f"config json; found .bin {bins}, configs {configs}")
  config = _read_or_empty(os.path.join(directory, configs[0]))
  vocab_names = [os.path.basename(str(config.get("vocab_path", "")))]
  vocab_names += ["vocab.txt"] + [n for n in names if n.endswith(".txt") and
                                  "vocab" in n]
  return (os.path.join(directory, bins[0]),
          os.path.join(directory, configs[0]),
          files.optional_file(directory, *[n for n in vocab_names if n]))


def _read_or_empty(path):
  try:
    return files.read_json(path)
  except (ValueError, OSError):
    return {}
