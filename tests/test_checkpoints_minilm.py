"""Real weights: sentence-transformers' all-MiniLM-L6-v2 (Hugging Face,
unprefixed names) against the numpy reference, on real English text.

Skips when the shared models directory is absent (set
FASTBERT_SHARED_MODELS to the folder holding all-MiniLM-L6-v2).
"""

import os
import sys

import pytest

from fastbert_tf import checkpoints
from fastbert_tf.testing import parity

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MODELS = os.environ.get("FASTBERT_SHARED_MODELS",
                               os.path.join(_REPO, "..", "shared", "models"))
MODEL_DIR = os.path.join(SHARED_MODELS, "all-MiniLM-L6-v2")

pytestmark = pytest.mark.skipif(
    not os.path.isdir(MODEL_DIR),
    reason=f"{MODEL_DIR} not found (set FASTBERT_SHARED_MODELS)")


def test_minilm_matches_reference_and_ranks_paraphrases():
  info = checkpoints.read_info(MODEL_DIR)
  assert info.format == "huggingface" and info.lowercase
  assert info.architecture["num_layers"] == 6
  texts = parity.unique_texts()
  result = parity.huggingface_parity(MODEL_DIR, texts)
  print("max |ours - reference| per layer:",
        ", ".join(f"{d:.2e}" for d in result["diffs"]))
  assert len(result["diffs"]) == 6
  assert max(result["diffs"]) < 1e-4, result["diffs"]
  assert set(result["report"].unused) == {
      "embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
  cosines = parity.pair_cosines(result, texts)
  for pair in cosines:
    print(f"{pair['kind']:10s} {pair['cosine']:.4f}  {pair['a']!r} / "
          f"{pair['b']!r}")
    assert abs(pair["cosine"] - pair["reference_cosine"]) < 1e-4
  paraphrase = min(p["cosine"] for p in cosines if p["kind"] == "paraphrase")
  unrelated = max(p["cosine"] for p in cosines if p["kind"] == "unrelated")
  assert paraphrase > unrelated + 0.3, cosines


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
