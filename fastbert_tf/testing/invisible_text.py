"""Characters that tokenizers normalise away, by class: the texts that the
one empty-text rule (data/tokenizer.py, `Encoder.empty_texts`) must refuse
on every path. Shared by the fault benches and the tests."""

import random

CLASSES = {
    "zero_width": "\u200b\u200c\u200d\u2060\ufeff",
    "control": "\x01\x02\x07\x1b\x7f",
    "bidi": "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2069",
    "combining": "\u0300\u0301\u0308\u0327\u036f",
}
CLASSES["mixed"] = "".join(CLASSES.values())


def invisible_text(alphabet, seed, length=6):
  """A seeded text of `length` characters drawn from `alphabet` (str)."""
  rng = random.Random(seed)
  return "".join(rng.choice(alphabet) for _ in range(length))
