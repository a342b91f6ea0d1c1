"""Writes the pre-rename fixtures in this directory (kept for the record).

Run ONCE against the code before `BertBackbone` became `FastBertBackbone`
and FastBertClassifier took a backbone object (main at 4cfb010):

  PYTHONPATH=/path/to/that/checkout python tests/data/pre_rename/write_fixtures.py

tests/test_pre_rename_models.py loads what it wrote with today's code and
compares the outputs with the ones recorded here. Rerunning it with newer
code would test nothing: the point is files that older code wrote.
"""

import os
import shutil
import sys
import tempfile

import keras
import numpy as np

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.models import saving
from fastbert_tf.models.bert_backbone import BertBackbone

HERE = os.path.dirname(os.path.abspath(__file__))
# Two layers keep every file small; the UER model also covers the LayerNorm
# variant, the tanh GELU and three segments.
VARIANTS = {
    "model_dir_bert": dict(),
    "model_dir_uer": dict(layer_norm_type="uer", activation="gelu_approximate",
                          num_segments=3, layer_norm_epsilon=1e-6),
}


def _model_dir(name, overrides, inputs, outputs):
  model = testing.tiny_model(seed=7, sharpen=8.0, dropout=0.0, num_layers=2,
                             **overrides)
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  target = os.path.join(HERE, name)
  shutil.rmtree(target, ignore_errors=True)
  os.makedirs(target)
  with tempfile.TemporaryDirectory() as tmp:
    staged = os.path.join(tmp, "staged")
    saving.save_model(model, encoder, staged)
    saving.publish(staged, target, "pre-rename-fixture",
                   os.path.join(tmp, "plan.json"))
  outputs[name] = np.asarray(model(inputs, training=False))
  return model


def main():
  keras.utils.set_random_seed(0)
  inputs = testing.random_inputs(4, 9, len(testing.TINY_VOCAB), seed=3)
  outputs = {}
  for name, overrides in VARIANTS.items():
    model = _model_dir(name, overrides, inputs, outputs)
  # The last (UER) classifier as a .keras file: its config is the flat one.
  model.save(os.path.join(HERE, "classifier.keras"))
  outputs["classifier_keras"] = outputs["model_dir_uer"]
  # A bare backbone in a functional model: its layer is serialized under the
  # registered name "fastbert_tf>BertBackbone".
  backbone = BertBackbone(len(testing.TINY_VOCAB), 2, 2, 8, 16,
                          max_sequence_length=16, dropout=0.0)
  symbolic = {k: keras.Input((None,), dtype="int32", name=k) for k in inputs}
  functional = keras.Model(symbolic, backbone(symbolic)[-1])
  functional.save(os.path.join(HERE, "backbone.keras"))
  outputs["backbone_keras"] = np.asarray(functional(inputs, training=False))
  np.savez(os.path.join(HERE, "expected.npz"),
           **{f"input_{k}": v for k, v in inputs.items()}, **outputs)
  print("wrote", sorted(os.listdir(HERE)), file=sys.stderr)


if __name__ == "__main__":
  main()
