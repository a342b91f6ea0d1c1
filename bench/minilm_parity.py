"""Checkpoint parity on real weights: all-MiniLM-L6-v2 through our reader.

Restores the Hugging Face checkpoint into our FastBertBackbone, runs a few real
English sentences (tokenized by our TextEncoder) through it and through the
float64 numpy reference (fastbert_tf.testing.numpy_bert) on the raw arrays,
and records the max difference per layer plus mean-pooled cosine
similarities of paraphrase and unrelated pairs.

  .venv/bin/python bench/minilm_parity.py \
      --model_dir=../shared/models/all-MiniLM-L6-v2 \
      --output=bench/results/minilm_parity.json
"""

import os
import sys

# Run as a script from anywhere: make the repo root importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from bench import common
from fastbert_tf.testing import parity

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "../shared/models/all-MiniLM-L6-v2",
    "Hugging Face BERT directory (config.json, model.safetensors, vocab.txt).")
_OUTPUT = flags.DEFINE_string("output", "bench/results/minilm_parity.json",
                              "Where to write the json record.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128,
                                       "Tokenizer truncation length.")


def main(argv):
  del argv
  texts = parity.unique_texts()
  result = parity.huggingface_parity(_MODEL_DIR.value, texts,
                                         _MAX_SEQ_LENGTH.value)
  pairs = parity.pair_cosines(result, texts)
  record = common.record(
      model_dir=_MODEL_DIR.value,
      reference="float64 numpy BERT (fastbert_tf.testing.numpy_bert), erf "
                "GELU, on the raw safetensors arrays; ours: float32 "
                "FastBertBackbone restored by fastbert_tf.checkpoints",
      num_texts=len(texts),
      num_real_tokens=int(result["padding_mask"].sum()),
      max_abs_diff_per_layer=result["diffs"],
      cosine_similarities=pairs,
      conversion=result["report"].summary())
  common.write_records(_OUTPUT.value, [record])
  for layer, diff in enumerate(result["diffs"], 1):
    print(f"layer {layer}: max |ours - reference| = {diff:.3e}")
  for pair in pairs:
    print(f"{pair['kind']:10s} cosine {pair['cosine']:+.4f}  "
          f"{pair['a']!r} / {pair['b']!r}")
  print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  app.run(main)
