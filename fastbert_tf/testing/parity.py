"""Real-checkpoint parity: our restored backbone against the float64 numpy
BERT (numpy_bert) on real sentences, with sentence-embedding cosines as a
sanity check. Used by tests/test_checkpoints_minilm.py and
bench/minilm_parity.py.
"""

import numpy as np

from fastbert_tf.testing import numpy_bert


def mean_pool(hidden, padding_mask):
  """float [batch, seq, hidden], int [batch, seq] -> float64 [batch, hidden],
  the mean over real tokens (sentence-transformers' pooling)."""
  mask = np.asarray(padding_mask, np.float64)[..., None]
  return (np.asarray(hidden, np.float64) * mask).sum(1) / mask.sum(1)


def cosine(a, b):
  return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# Real English pairs for checkpoint sanity checks: (kind, text a, text b).
SENTENCE_PAIRS = (
    ("paraphrase", "A man is playing a guitar.",
     "Someone plays an acoustic guitar."),
    ("paraphrase", "The stock market fell sharply today.",
     "Share prices dropped steeply on Wall Street this afternoon."),
    ("paraphrase", "How do I bake bread at home?",
     "What is a good recipe for homemade bread?"),
    ("unrelated", "A man is playing a guitar.",
     "The stock market fell sharply today."),
    ("unrelated", "The cat is sleeping on the sofa.",
     "Quantum computers store information in qubits."),
)


def huggingface_parity(path, texts, max_seq_length=128):
  """Our restored backbone vs this reference on real text.

  Tokenizes with our TextEncoder (the checkpoint's vocab and casing),
  restores the Hugging Face checkpoint at `path` into a FastBertBackbone and
  runs the same ids through `numpy_bert.forward` on the raw safetensors
  arrays.

  Args:
    path: str, a Hugging Face directory with model.safetensors.
    texts: list of str.
    max_seq_length: int.

  Returns:
    dict: `diffs` (max abs difference per layer over real tokens), `ours` and
    `reference` (last layer, [batch, seq, hidden]), `padding_mask`
    ([batch, seq]) and `report` (the ConversionReport).
  """
  # pylint: disable=g-import-not-at-top
  import os
  import tensorflow as tf
  from safetensors.numpy import load_file
  from fastbert_tf import checkpoints
  from fastbert_tf.data.tokenizer import TextEncoder
  from fastbert_tf.models.bert_backbone import FastBertBackbone
  # pylint: enable=g-import-not-at-top
  info = checkpoints.read_info(path)
  arch = info.architecture
  backbone = FastBertBackbone(**arch, dropout=0.0)
  report = checkpoints.restore_backbone(backbone, path)
  encoder = TextEncoder(info.vocab_path, max_seq_length,
                        lowercase=info.lowercase)
  inputs = {k: v.numpy() for k, v in encoder(tf.constant(texts)).items()}
  ours = [h.numpy() for h in backbone(inputs)]
  tensors = load_file(os.path.join(path, "model.safetensors"))
  prefix = ("bert." if "bert.embeddings.word_embeddings.weight" in tensors
            else "")
  params = numpy_bert.from_names(tensors, numpy_bert.HF_NAMES,
                                 arch["num_layers"], True, prefix)
  reference = numpy_bert.forward(
      params, inputs["token_ids"], inputs["segment_ids"],
      inputs["padding_mask"], arch["num_heads"], arch["activation"],
      arch["layer_norm_epsilon"])
  mask = inputs["padding_mask"]
  return dict(diffs=numpy_bert.layer_diffs(ours, reference, mask),
              ours=ours[-1], reference=reference[-1], padding_mask=mask,
              report=report)


def pair_cosines(result, texts, pairs=SENTENCE_PAIRS):
  """Mean-pooled cosine per pair, from `huggingface_parity`'s result.

  Returns:
    list of dict(kind, a, b, cosine (ours), reference_cosine).
  """
  ours = mean_pool(result["ours"], result["padding_mask"])
  reference = mean_pool(result["reference"], result["padding_mask"])
  index = {t: i for i, t in enumerate(texts)}
  return [dict(kind=kind, a=a, b=b,
               cosine=cosine(ours[index[a]], ours[index[b]]),
               reference_cosine=cosine(reference[index[a]],
                                       reference[index[b]]))
          for kind, a, b in pairs]


def unique_texts(pairs=SENTENCE_PAIRS):
  return list(dict.fromkeys(t for _, a, b in pairs for t in (a, b)))
