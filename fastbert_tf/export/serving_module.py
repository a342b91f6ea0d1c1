"""The serving SavedModel: early exit in a tf.while_loop, speed an input.

Signatures (the contract in export/README.md):
  serving_default / predict_text: `text` string [batch] (+ `text_b` for pair
      tasks) and `speed`; tokenized in the graph.
  predict_ids: int32 [batch, seq] `token_ids`, `segment_ids`,
      `padding_mask` and `speed`.
`speed` is float32 [batch] (each sample its own threshold; what TF
Serving's server-side batching needs, as it concatenates requests along
dimension 0) or a scalar for the whole request (broadcast; existing
clients), declared with unknown rank so one signature takes both.
Each returns per sample: `probabilities` float32 [batch, num_classes],
`label` int32, `exit_layer` int32 (1-based), `uncertainty` float32,
`flops` float32 (paper unit).
The text signatures refuse (InvalidArgument) a text the tokenizer finds
empty (the text rule, data/tokenizer.py); the module's `content_lengths`
function (string [batch] -> int32 [batch], no signature) lets the local
server and the Predictor apply the same rule before running the model.

The module tracks the model's variables, never the Keras model itself: a
SavedModel holding a Keras 3 model fails in the TF1 / C++ loader that
TF Serving uses (TF_NOTES trap 2). Weights are stored once.
"""

import tensorflow as tf

from fastbert_tf.data import rows
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import single_text

SIGNATURE_TEXT = "predict_text"
SIGNATURE_IDS = "predict_ids"
DEFAULT_SIGNATURE = "serving_default"
ID_INPUTS = ("token_ids", "segment_ids", "padding_mask")


class ServingModule(tf.Module):
  """Wraps a FastBertClassifier and its TextEncoder for export.

  Args:
    model: a built FastBertClassifier.
    encoder: the fastbert_tf.data.tokenizer.TextEncoder it was trained with.
    flops: FlopsTable (per-sample `flops` output).
    text_pair: bool, whether the text signature takes `text_b` too.
    criterion: criteria.ExitCriterion baked into the graph (speed stays the
      threshold it is compared with).
    dispatch: the loop's layer dispatch, early_exit.DISPATCHES ("cond" for
      exports meant for TFLite).
    single_text_buckets: None, or sequence lengths (single_text.buckets_for)
      for the XLA path a request of one text takes (single_text module);
      None: every request takes the tf.while_loop.

  Example:
    >>> module = ServingModule(model, encoder, flops_lib.flops_table(config))
    >>> tf.saved_model.save(module, "/tmp/m/1", signatures=module.signatures())
  """

  def __init__(self, model, encoder, flops, text_pair=False,
               criterion=criteria.ExitCriterion(), dispatch="cond",
               single_text_buckets=None):
    super().__init__(name="fastbert_serving")
    # Plain tf.Variables, so the SavedModel has no Keras objects in it.
    self.model_variables = [v.value for v in model.variables]
    self.encoder = encoder
    self.text_pair = bool(text_pair)
    config = model.backbone.get_config()
    limits = dict(vocabulary_size=config["vocabulary_size"],
                  num_segments=config["num_segments"],
                  max_sequence_length=config["max_sequence_length"])
    if single_text_buckets:
      run = single_text.early_exit_with_single_text(
          model, flops, criterion, dispatch, single_text_buckets)
    else:
      run = lambda *ids_and_speed: early_exit.early_exit(
          model, *ids_and_speed, flops, criterion, dispatch)

    def classify(token_ids, segment_ids, padding_mask, speed):
      checks = _input_checks(token_ids, segment_ids, padding_mask, speed,
                             **limits)
      # Every input waits for the checks, so none reaches a gather first.
      with tf.control_dependencies(checks):
        token_ids, segment_ids, padding_mask, speed = (
            tf.identity(t) for t in (token_ids, segment_ids, padding_mask,
                                     speed))
      return run(token_ids, segment_ids, padding_mask, speed)

    speed = tf.TensorSpec(None, tf.float32, name="speed")
    self.predict_ids = tf.function(
        classify, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name=n) for n in ID_INPUTS
        ] + [speed])
    text = tf.TensorSpec([None], tf.string, name="text")
    self.content_lengths = tf.function(encoder.content_lengths,
                                       input_signature=[text])
    if self.text_pair:
      text_b = tf.TensorSpec([None], tf.string, name="text_b")
      self.predict_text = tf.function(
          lambda text, text_b, speed: classify(
              **encoder(*_refuse_empty(encoder, text=text, text_b=text_b)),
              speed=speed),
          input_signature=[text, text_b, speed])
    else:
      self.predict_text = tf.function(
          lambda text, speed: classify(
              **encoder(*_refuse_empty(encoder, text=text)), speed=speed),
          input_signature=[text, speed])

  def signatures(self):
    """{signature name: concrete function} for tf.saved_model.save."""
    text = self.predict_text.get_concrete_function()
    return {DEFAULT_SIGNATURE: text, SIGNATURE_TEXT: text,
            SIGNATURE_IDS: self.predict_ids.get_concrete_function()}


def _refuse_empty(encoder, **texts):
  """The texts, gated by the text rule: InvalidArgument naming the input
  and the indices of its empty texts (answered from [CLS] [SEP] alone,
  they would be noise)."""
  out = []
  for name, text in texts.items():
    empty = tf.where(encoder.content_lengths(text) <= 0)[:, 0]
    check = tf.debugging.Assert(tf.equal(tf.size(empty), 0), [
        f"input '{name}' {rows.EMPTY_TEXT}; at indices", empty])
    with tf.control_dependencies([check]):
      out.append(tf.identity(text))
  return out


def _input_checks(token_ids, segment_ids, padding_mask, speed,
                  vocabulary_size, num_segments, max_sequence_length):
  """Asserts that turn a bad request into INVALID_ARGUMENT with a message
  naming the input, instead of a gather error deep in the model."""
  shape = tf.shape(token_ids)
  # False for NaN too.
  ok_speed = tf.reduce_all(tf.logical_and(speed >= 0.0, speed <= 1.0))
  ok_rank = tf.logical_or(
      tf.equal(tf.rank(speed), 0),
      tf.logical_and(tf.equal(tf.rank(speed), 1),
                     tf.reduce_any(tf.equal(tf.size(speed), [1, shape[0]]))))
  return [
      tf.debugging.Assert(ok_rank, [
          "speed must be a scalar or float32 [batch] (one per sample); got "
          "shape", tf.shape(speed), "for a batch of", shape[0]]),
      tf.debugging.Assert(ok_speed, ["speed must be a number in [0, 1], got",
                                     speed]),
      tf.debugging.assert_equal(tf.shape(segment_ids), shape, message=
                                "segment_ids must have the shape of token_ids"),
      tf.debugging.assert_equal(tf.shape(padding_mask), shape, message=
                                "padding_mask must have the shape of token_ids"),
      tf.debugging.assert_less_equal(
          shape[1], max_sequence_length,
          message=f"sequence longer than max_sequence_length "
          f"{max_sequence_length}"),
      _assert_in_range(token_ids, vocabulary_size, "token_ids"),
      _assert_in_range(segment_ids, num_segments, "segment_ids"),
      _assert_in_range(padding_mask, 2, "padding_mask"),
      # Training never sees a row without tokens; its answer would be noise.
      tf.debugging.Assert(
          tf.reduce_all(tf.reduce_any(padding_mask > 0, axis=1)),
          ["padding_mask has a row of zeros; every row needs at least its "
           "[CLS] position marked 1"]),
  ]


def _assert_in_range(values, upper, name):
  ok = tf.reduce_all((values >= 0) & (values < upper))
  return tf.debugging.Assert(ok, [f"{name} must lie in [0, {upper})"])
