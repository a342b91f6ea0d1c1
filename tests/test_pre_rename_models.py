"""Files written before the keras-hub reshape (issue 22 item 6) still load.

tests/data/pre_rename/ holds model directories and `.keras` files written by
the code of main at 4cfb010, when the backbone class was `BertBackbone`,
FastBertClassifier's config was flat and the UER LayerNorm was swapped into
keras-hub's TransformerEncoder by attribute name (write_fixtures.py there).
Today's code must load them and give the outputs that code recorded.
"""

import os
import sys

import keras
import numpy as np
import pytest

from fastbert_tf.models import saving
from fastbert_tf.models.bert_backbone import FastBertBackbone
from fastbert_tf.models.fastbert_classifier import FastBertClassifier

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                    "pre_rename")


@pytest.fixture(scope="module", name="expected")
def _expected():
  with np.load(os.path.join(DATA, "expected.npz")) as f:
    return dict(f)


def _inputs(expected):
  return {k[len("input_"):]: v for k, v in expected.items()
          if k.startswith("input_")}


@pytest.mark.parametrize("name", ["model_dir_bert", "model_dir_uer"])
def test_model_directory_loads_and_predicts_the_same(name, expected):
  # The manifest is checked too: the files are the ones old code published.
  model, encoder = saving.load_model(os.path.join(DATA, name))
  assert isinstance(model.backbone, FastBertBackbone)
  assert encoder.max_seq_length == 16
  got = model(_inputs(expected), training=False)
  np.testing.assert_allclose(np.asarray(got), expected[name], atol=1e-5)


def test_uer_model_directory_runs_uer_layer_norms(expected):
  model, _ = saving.load_model(os.path.join(DATA, "model_dir_uer"))
  assert model.backbone.layer_norm_type == "uer"
  assert model.backbone.num_segments == 3


def test_classifier_keras_file_loads(expected):
  model = keras.saving.load_model(os.path.join(DATA, "classifier.keras"))
  assert isinstance(model, FastBertClassifier)
  got = model(_inputs(expected), training=False)
  np.testing.assert_allclose(np.asarray(got), expected["classifier_keras"],
                             atol=1e-5)


def test_backbone_keras_file_loads_under_the_old_name(expected):
  # Serialized as "fastbert_tf>BertBackbone": the alias must resolve it.
  model = keras.saving.load_model(os.path.join(DATA, "backbone.keras"))
  inner = [l for l in model.layers if isinstance(l, FastBertBackbone)]
  assert len(inner) == 1
  got = model(_inputs(expected), training=False)
  np.testing.assert_allclose(np.asarray(got), expected["backbone_keras"],
                             atol=1e-5)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
