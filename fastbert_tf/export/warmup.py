"""TF Serving warmup requests: what a server replays while it loads a
version, so that the first real request does not pay for tracing (or, with
the XLA single-text path, for compiling every length bucket).

The requests go into `<version>/assets.extra/tf_serving_warmup_requests`,
a TFRecord of PredictionLog protos, the format TF Serving reads.
"""

import os

import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from fastbert_tf.export import serving_module

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Short texts in both of the project's languages; warmup only has to trace
# every signature once, not to be representative.
WARMUP_TEXTS = ("This book is wonderful.", "质量太差了，不推荐。")


def warmup_requests(encoder, speed, single_text_buckets=None):
  """PredictRequests for TF Serving's warmup: one per signature with two
  texts; with single_text_buckets, also one text of each bucket's length
  per signature (batch 1 takes the XLA path, compiled per bucket)."""
  batches = [list(WARMUP_TEXTS)]
  if single_text_buckets:
    batches += [[t] for t in _texts_per_bucket(encoder, single_text_buckets)]
  requests = []
  for texts in batches:
    requests += _requests_for(encoder, texts, speed)
  if single_text_buckets:  # predict_ids at exactly each bucket's length
    long = tf.constant([_long_text(encoder)])
    ids = encoder(long, long if encoder.text_pair else None)
    for length in single_text_buckets:
      cut = {k: v[:, :length] for k, v in ids.items()}
      if cut["token_ids"].shape[1] == length:
        requests.append(_request(serving_module.SIGNATURE_IDS, cut, speed, 1))
  return requests


def _requests_for(encoder, texts, speed):
  """One request per signature for `texts`."""
  tensor = tf.constant(texts)
  text_inputs = {"text": tensor}
  if encoder.text_pair:
    text_inputs["text_b"] = tensor
  ids = encoder(tensor, tensor if encoder.text_pair else None)
  return [_request(signature, inputs, speed, len(texts))
          for signature, inputs in (
              (serving_module.DEFAULT_SIGNATURE, text_inputs),
              (serving_module.SIGNATURE_TEXT, text_inputs),
              (serving_module.SIGNATURE_IDS, ids))]


def _request(signature, inputs, speed, batch):
  """A PredictRequest of `inputs` with `speed` for each of `batch` rows."""
  request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(signature_name=signature))
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  # float32 [batch]: the form TF Serving's batching session needs (a
  # scalar there fails the warmup, and with it the version's load).
  request.inputs["speed"].CopyFrom(tf.make_tensor_proto(
      [speed] * batch, dtype=tf.float32))
  return request


def _long_text(encoder):
  """A warmup text that fills max_seq_length."""
  return " ".join(WARMUP_TEXTS) * encoder.max_seq_length


def _texts_per_bucket(encoder, buckets):
  """For each bucket length b (ascending), a prefix of _long_text whose
  tokenized length lies in (previous bucket, b], where one exists."""
  text = _long_text(encoder)

  def length(n):
    prefix = tf.constant([text[:n]])
    return int(encoder(prefix, prefix if encoder.text_pair else None)
               ["token_ids"].shape[1])

  texts, previous = [], 0
  for bucket in sorted(buckets):
    # The shortest prefix longer than the previous bucket (length grows
    # with the prefix): bisection, a few dozen tokenizer calls in all.
    lo, hi = 1, len(text)
    while lo < hi:
      mid = (lo + hi) // 2
      lo, hi = (mid + 1, hi) if length(mid) <= previous else (lo, mid)
    if previous < length(lo) <= bucket:
      texts.append(text[:lo])
    else:  # e.g. a pair model's lengths grow two tokens at a time
      logging.warning(
          "No warmup text of %d-%d tokens: bucket %d compiles on its first "
          "text signature request", previous + 1, bucket, bucket)
    previous = bucket
  return texts


def write_warmup_requests(path, encoder, speed, single_text_buckets=None):
  """Writes the PredictionLog TFRecord TF Serving replays at load time."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for request in warmup_requests(encoder, speed, single_text_buckets):
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
