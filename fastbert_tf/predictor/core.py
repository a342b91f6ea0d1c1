"""Classify raw texts with early exit: `Predictor` over a model directory or
an export.

One object, two kinds of model on disk (and `Predictor.connect` for a
served export, over gRPC):
  - a training `--model_dir` (config.json + weights + tokenizer, read by
    `models.saving.load_model`), run through the same tf.function as the
    export's text signature (`serving.serving_module.ServingModule`);
  - a SavedModel export: a version directory (`<base>/<version>/`) or the
    export base (its newest numeric version), run through its
    `predict_text` signature.
Either way the answers come from the one early-exit loop
(`inference.early_exit`), batched here, with `speed` a float for every text
or one per text. TensorFlow is imported when a model is loaded, not when
this module is.
"""

import numpy as np

from fastbert_tf.data import rows
from fastbert_tf.data.labels import LabelSet
from fastbert_tf.predictor import backends
from fastbert_tf.predictor.predictions import check_speeds
from fastbert_tf.predictor.predictions import checked_texts
from fastbert_tf.predictor.predictions import positive
from fastbert_tf.predictor.predictions import Predictions

DEFAULT_BATCH_SIZE = 64
resolve_model_path = backends.resolve_model_path


class Predictor:
  """Early-exit classification of raw texts, batched.

  Build with `Predictor.load`; the constructor takes an already-built
  classify function (tests, servers).

  Args:
    classify: callable(text, text_b, speed) -> dict of numpy outputs, with
      text / text_b string numpy [batch] (text_b None for single-text
      models) and speed float32 numpy [batch].
    num_classes, num_layers: int.
    baseline_flops: float, the full model's FLOPs per text.
    text_pair: bool, whether the model takes (text, text_b) pairs.
    labels: data.labels.LabelSet or None (ids only).
    source: str, where the model came from (messages).
    batch_size: int, texts per call of `classify`.
    empty_texts: the text rule of the model (data/tokenizer.py):
      callable(list of n str) -> bool [n], True for a text its tokenizer
      finds empty; None when the backend applies it (a server).

  Attributes:
    sort_by_length: bool (default True), batch texts of similar length
      together within each predict() call (less padding; the answers come
      back in input order and do not depend on the batching).

  Examples:

  >>> from fastbert_tf import Predictor
  >>> predictor = Predictor.load("runs/quickstart")      # or an export
  >>> out = predictor.predict(["这本书非常好看", "质量太差了"], speed=0.5)
  >>> out.label_name, out.exit_layer, out.speedup   # names, 1-based layers
  >>> predictor.predict(["a", "b"], speed=[0.0, 0.8])   # one speed per text
  """

  def __init__(self, classify, num_classes, num_layers, baseline_flops,
               text_pair=False, labels=None, source="",
               batch_size=DEFAULT_BATCH_SIZE, empty_texts=None):
    self._classify = classify
    self.empty_texts = empty_texts
    self.num_classes = int(num_classes)
    self.num_layers = int(num_layers)
    self.baseline_flops = float(baseline_flops)
    self.text_pair = bool(text_pair)
    self.labels = labels or LabelSet(self.num_classes)
    if self.labels.num_classes != self.num_classes:
      raise ValueError(f"{source}: labels.json names "
                       f"{self.labels.num_classes} classes, the model has "
                       f"{self.num_classes}")
    self.source = source
    self.batch_size = positive("batch_size", batch_size)
    self.sort_by_length = True

  @property
  def label_names(self):
    """Tuple of num_classes str, or None when the model knows ids only."""
    return self.labels.names

  @classmethod
  def load(cls, path, batch_size=DEFAULT_BATCH_SIZE, dtype=None,
           criterion=None, dispatch="cond", single_text="loop"):
    """Loads a training model directory or a SavedModel export.

    Args:
      path: str, a fastbert_tf model directory, a SavedModel version
        directory, or an export base (its newest numeric version is used).
      batch_size: int, texts per graph call.
      dtype: model directories only: a Keras dtype policy to run in instead
        of the saved one (e.g. "float32" for a mixed_float16 model on CPU).
      criterion: model directories only: an inference.criteria
        .ExitCriterion; default the one results.json records (entropy if
        none). An export has its criterion compiled in.
      dispatch: model directories only: early_exit dispatch ("cond" or
        "tensor_array"); the answers are the same.
      single_text: model directories only: "loop", or "xla" to run a batch
        of one text as one XLA program (inference/single_text.py; faster
        for one text at a time, e.g. batch_size=1; same answers). An
        export has it compiled in or not (`--single_text`).

    Returns:
      Predictor.

    Raises:
      FileNotFoundError: path holds neither kind of model (the message says
        what each needs).
      ValueError: an export that cannot be loaded (an export base: none of
        its versions; the newest that loads is used).
    """
    kind, resolved = backends.resolve_model_path(path)
    if kind == "model_dir":
      return backends.from_model_dir(cls, resolved, batch_size, dtype,
                                     criterion, dispatch, single_text)
    if kind == "export_base":
      return backends.from_export_base(cls, resolved, batch_size)
    return backends.from_saved_model(cls, resolved, batch_size)

  @classmethod
  def connect(cls, address, model_name="default", timeout=10.0,
              signature="serving_default", label_names=None,
              batch_size=DEFAULT_BATCH_SIZE):
    """A Predictor over a served export (TF Serving, or fastbert-serve).

    Uses the gRPC client (fastbert_tf.serving.client), which does not
    import TensorFlow. Every predict() call sends one request per batch.

    Args:
      address: str, "HOST:PORT".
      model_name: str, the served model's name.
      timeout: float, seconds per request.
      signature: str, a text signature (serving_default / predict_text).
      label_names: optional list of str (the server does not send them).
      batch_size: int, texts per request (keep it under the server's
        --max_texts_per_request).

    Raises:
      serving.client.ServingError: the server is unreachable or the
        signature unknown.
    """
    return backends.from_server(cls, address, model_name, timeout,
                                signature, label_names, batch_size)

  def predict(self, texts, speed=0.5, text_b=None, batch_size=None):
    """Classifies texts, each at the first layer confident enough.

    Args:
      texts: list of str (a lone str is a batch of one); none empty (the
        text rule: no text the tokenizer finds empty).
      speed: float in [0, 1] for every text, or a sequence of one per text;
        0 = the full model, higher = earlier exits.
      text_b: list of str, the second segments, for pair models only.
      batch_size: int, overrides the predictor's for this call.

    Returns:
      Predictions, in input order.

    Raises:
      ValueError: naming the first bad text (not UTF-8 included) or speed
        and what was expected.
      TypeError: texts (or text_b) not a list of str (None, a number).
    """
    texts, text_b = checked_texts("texts", texts), text_b
    if self.text_pair != (text_b is not None):
      raise ValueError(
          f"{self.source} is a {'pair' if self.text_pair else 'single-text'}"
          f" model: {'give' if self.text_pair else 'do not give'} text_b")
    if text_b is not None:
      text_b = checked_texts("text_b", text_b)
      if len(text_b) != len(texts):
        raise ValueError(f"text_b has {len(text_b)} texts, texts "
                         f"{len(texts)}")
    self._refuse_empty("texts", texts)
    if text_b is not None:
      self._refuse_empty("text_b", text_b)
    speeds = check_speeds(speed, len(texts))
    size = positive("batch_size", self.batch_size if batch_size is None
                     else batch_size)
    # Batches of similar lengths pad little (a batch runs at its longest
    # text's length); answers go back to input order below.
    lengths = [len(a) + (len(text_b[i]) if text_b else 0)
               for i, a in enumerate(texts)]
    order = (np.argsort(lengths, kind="stable") if self.sort_by_length
             else np.arange(len(texts)))
    texts = np.array(texts, dtype=object)
    text_b = None if text_b is None else np.array(text_b, dtype=object)
    parts = []
    for start in range(0, len(texts), size):
      rows = order[start:start + size]
      parts.append(self._classify(texts[rows], None if text_b is None else
                                  text_b[rows], speeds[rows]))
    return self._collect(parts, np.argsort(order))

  def _refuse_empty(self, name, texts):
    if self.empty_texts is None or not texts:
      return
    empty = np.flatnonzero(self.empty_texts(texts))
    if empty.size:
      i = int(empty[0])
      raise ValueError(rows.empty_text_message(f"{name}[{i}]", texts[i]))

  def _collect(self, parts, inverse):
    def cat(key, dtype, shape):
      if not parts:
        return np.zeros(shape, dtype)
      return np.concatenate([np.asarray(p[key], dtype)
                             for p in parts])[inverse]
    label = cat("label", np.int32, [0])
    return Predictions(
        label=label,
        label_name=tuple(self.labels.name(int(k)) for k in label),
        probabilities=cat("probabilities", np.float32, [0, self.num_classes]),
        exit_layer=cat("exit_layer", np.int32, [0]),
        uncertainty=cat("uncertainty", np.float32, [0]),
        flops=cat("flops", np.float32, [0]),
        baseline_flops=self.baseline_flops)
