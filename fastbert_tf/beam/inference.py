"""A RunInference model handler for FastBERT models: batches of
records.Record in, one answer dict per record out.

The model is a fastbert_tf.Predictor (a training model directory or a
SavedModel export, local or on any filesystem TensorFlow reads, e.g.
gs://), loaded once per worker process and shared by its threads
(RunInference's shared handle), or once per machine with large_model=True.

Examples:

>>> import apache_beam as beam
>>> from apache_beam.ml.inference.base import RunInference
>>> from fastbert_tf.beam.inference import FastBertModelHandler
>>> from fastbert_tf.predictor.records import Record
>>> handler = FastBertModelHandler("exports/quickstart", speed=0.5)
>>> with beam.Pipeline() as p:
...   (p | beam.Create([Record(0, "这本书很好看"), Record(0, "太差了", speed=0.0)])
...      | RunInference(handler) | beam.Map(print))
"""

from collections.abc import Iterable
from collections.abc import Sequence

from apache_beam.ml.inference import base
import numpy as np

from fastbert_tf.predictor import records


# Characters (text and text_b): bucket edges of BatchElements' length_fn.
LENGTH_BUCKETS = [32, 64, 128, 256, 512, 1024]


# The key of the answer that stands for a record the model refuses (a text
# empty to the tokenizer); pipeline.ClassifyFiles sends it to the bad lines.
BAD_ANSWER = "_bad_line"


def empty_text_reasons(model, batch):
  """[None, or `text is empty to the tokenizer ...` per Record]: the text
  rule of the model (Predictor.empty_texts), applied before the batch runs
  so one such text does not fail all the others."""
  from fastbert_tf.data import rows  # pylint: disable=g-import-not-at-top
  reasons = [None] * len(batch)
  if getattr(model, "empty_texts", None) is None:
    return reasons
  fields = [("text", [r.text for r in batch])]
  if model.text_pair:
    fields.append(("text_b", [r.text_b for r in batch]))
  for name, texts in fields:
    for i in np.flatnonzero(model.empty_texts(texts)):
      if reasons[i] is None:
        reasons[i] = rows.empty_text_message(name, texts[i])
  return reasons


def record_length(record):
  """Characters of a Record's text(s), for length-bucketed batches."""
  return len(record.text) + len(record.text_b or "")


class FastBertModelHandler(base.ModelHandler):
  """ModelHandler[Record, dict, Predictor].

  Args:
    model_path: str, what fastbert_tf.Predictor.load takes.
    speed: float in [0, 1], for records without their own `speed`.
    batch_size: int, texts per graph call, and the largest batch Beam forms.
    min_batch_size: int, the smallest batch Beam waits for.
    include_text: bool, copy text (and text_b) into each answer (text files
      carry no line numbers or ids to join on).
    large_model: bool, one model per machine shared across processes.
    dtype: str or None, as Predictor.load's (model directories).
  """

  def __init__(self, model_path, speed=0.5, batch_size=64, min_batch_size=1,
               include_text=True, large_model=False, dtype=None):
    # Beam's length-bucketed batching: texts of similar length share a
    # batch, which then pads little (as the Predictor's own sorting).
    super().__init__(min_batch_size=min_batch_size, max_batch_size=batch_size,
                     large_model=large_model, batch_length_fn=record_length,
                     batch_bucket_boundaries=LENGTH_BUCKETS)
    if not 0.0 <= speed <= 1.0:
      raise ValueError(f"speed must be in [0, 1], got {speed}")
    self._model_path = model_path
    self._speed = float(speed)
    self._batch_size = int(batch_size)
    self._include_text = bool(include_text)
    self._large_model = bool(large_model)
    self._dtype = dtype

  def load_model(self):
    from fastbert_tf import tf_logs  # pylint: disable=g-import-not-at-top
    tf_logs.quiet_tensorflow_logs()
    from fastbert_tf.predictor import Predictor  # pylint: disable=g-import-not-at-top
    predictor = Predictor.load(self._model_path, batch_size=self._batch_size,
                               dtype=self._dtype)
    # Trace the graph here, so that the first batch is not minutes slower
    # than the others and Beam's load_model metric holds the whole start-up.
    predictor.predict(["a"], self._speed,
                      text_b=["a"] if predictor.text_pair else None)
    return predictor

  def run_inference(self, batch: Sequence[records.Record], model,
                    inference_args=None) -> Iterable[dict]:
    del inference_args
    if not batch:
      return []
    reasons = empty_text_reasons(model, batch)
    good = [r for r, reason in zip(batch, reasons) if reason is None]
    out = model.predict(
        [r.text for r in good],
        speed=[self._speed if r.speed is None else r.speed for r in good],
        text_b=[r.text_b for r in good] if model.text_pair else None
    ) if good else None
    answers, i = [], 0
    for record, reason in zip(batch, reasons):
      if reason is not None:  # a bad line, not a failed batch
        answers.append({BAD_ANSWER: reason})
        continue
      answer = records.answer(record, out, i)
      i += 1
      if self._include_text:
        answer["text"] = record.text
        if record.text_b is not None:
          answer["text_b"] = record.text_b
      if record.label is not None:
        answer["true_label"] = record.label
      answers.append(answer)
    return answers

  def get_num_bytes(self, batch: Sequence[records.Record]) -> int:
    return sum(len(r.text.encode()) + len((r.text_b or "").encode())
               for r in batch)

  def share_model_across_processes(self) -> bool:
    return self._large_model

  def update_model_path(self, model_path=None):
    if model_path:
      self._model_path = model_path

  def get_metrics_namespace(self) -> str:
    return "fastbert"
