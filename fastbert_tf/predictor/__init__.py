"""Classify raw texts with early exit, from Python or a file.

  core.py         Predictor: load a model directory, an export or a server;
                  predict() batches texts through the early-exit loop
  predictions.py  Predictions (the answers) and the checks of the inputs
  backends.py     how a Predictor reaches its model
  records.py      files of texts to classify and files of answers
  stream.py       a file streamed through a Predictor (fastbert-predict)

`from fastbert_tf.predictor import Predictor` (or `fastbert_tf.Predictor`).
TensorFlow is imported when a model is loaded, not by these imports.
"""

from fastbert_tf.predictor.core import DEFAULT_BATCH_SIZE
from fastbert_tf.predictor.core import Predictor
from fastbert_tf.predictor.core import resolve_model_path
from fastbert_tf.predictor.predictions import check_speeds
from fastbert_tf.predictor.predictions import Predictions
