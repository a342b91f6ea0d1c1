"""Early exit for one text at a time, as one XLA computation.

At batch 1 the early-exit loop's cost is TensorFlow's, not the model's: a
MiniLM-L6 request at speed 0.5 runs ~2,000 op executions (control flow,
gathers, scatters, the layer's small kernels), most of them microseconds of
work behind microseconds of executor overhead (BENCHMARKS.md, "Batch-1
serving against the peers"). This path compiles the whole exit rule for a
single text into one XLA program: the embeddings, then every layer unrolled,
each inside an XLA conditional taken only while the text is undecided
(layer k uses its own weights: no dispatch, no copies), classifier and exit
criterion included. The same answers as `early_exit.early_exit` (same
criterion code, same exit rule), to float32 rounding.

XLA compiles one program per input shape, so the sequence is padded
(padding_mask 0, which every layer and classifier already ignores) up to
the next of a few bucket lengths: one compilation per bucket, done by the
serving warmup. Batches > 1, and sequences longer than the largest bucket,
take the tf.while_loop, so batch 32 is unchanged.

Where it runs: anywhere TensorFlow's XLA CPU/GPU JIT does (the Python
loaders, this project's server, the Predictor; TF Serving only with
`--xla_cpu_compilation_enabled=true`, see export/README.md). The TFLite
converter takes it too (the program becomes plain IF branches, same
answers), but LiteRT runs one text faster from an export without it.
"""

import tensorflow as tf

from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit as early_exit_lib

DEFAULT_BUCKETS = (16, 32, 64, 128)


def buckets_for(max_seq_length, buckets=None):
  """The bucket lengths a model with inputs of up to max_seq_length uses.

  Args:
    max_seq_length: int, the longest sequence the text signatures produce.
    buckets: iterable of int or None (= DEFAULT_BUCKETS).

  Returns:
    sorted tuple of distinct ints in [1, max_seq_length], always ending with
    max_seq_length (so every tokenized text has a bucket).

  Raises:
    ValueError: a bucket < 1.

  Example:
    >>> buckets_for(100)
    (16, 32, 64, 100)
  """
  buckets = DEFAULT_BUCKETS if buckets is None else tuple(buckets)
  bad = [b for b in buckets if int(b) < 1]
  if bad:
    raise ValueError(f"--xla_buckets={','.join(str(b) for b in buckets)}: "
                     f"bucket lengths must be >= 1, got {bad}; expected "
                     "lengths >= 1 (those at or above max_seq_length are "
                     "dropped)")
  kept = {int(b) for b in buckets if int(b) < max_seq_length}
  return tuple(sorted(kept | {int(max_seq_length)}))


def _usable_buckets(model, buckets):
  """buckets (None: buckets_for the model's max_sequence_length), each cut
  to the length of the model's position table; sorted, distinct.

  Raises:
    ValueError: no bucket, or one < 1.
  """
  limit = int(model.backbone.max_sequence_length)
  if buckets is None:
    return buckets_for(limit)
  kept = tuple(sorted({min(int(b), limit) for b in buckets}))
  if not kept or kept[0] < 1:
    raise ValueError(f"bucket lengths must be >= 1, got {tuple(buckets)}")
  return kept


def trimmed_length(padding_mask):
  """int32 scalar: 1 + the last position any row marks as a token (at
  least 1). For one text, the length without its trailing padding: a
  client that pads ids to a fixed width still gets the bucket of its
  text's real length."""
  positions = tf.range(1, tf.shape(padding_mask)[1] + 1)
  marked = tf.cast(padding_mask > 0, tf.int32) * positions[None, :]
  return tf.maximum(tf.reduce_max(marked), 1)


def single_text_early_exit(model, flops, criterion=criteria.ExitCriterion(),
                           buckets=None):
  """Builds fn(token_ids, segment_ids, padding_mask, speed) for ONE text.

  Args:
    model: a built FastBertClassifier.
    flops: FlopsTable of the model (for the `flops` output).
    criterion: criteria.ExitCriterion.
    buckets: sequence lengths to pad to; None: buckets_for the model's
      max_sequence_length; lengths past it become it. The text's length
      without trailing padding (trimmed_length) must not exceed the last.

  Returns:
    A function of int32 [1, seq] ids and a float32 speed of one value
    (scalar or [1]), returning early_exit's outputs for a batch of one:
    probabilities float32 [1, num_classes], label int32 [1], exit_layer
    int32 [1], uncertainty float32 [1], flops float32 [1].

  Example:
    >>> run = single_text_early_exit(model, flops_lib.flops_table(config))
    >>> run(ids["token_ids"][:1], ids["segment_ids"][:1],
    ...     ids["padding_mask"][:1], 0.5)["exit_layer"]
  """
  num_layers, num_classes = model.num_layers, model.num_classes

  @tf.function(jit_compile=True)
  def compiled(token_ids, segment_ids, padding_mask, speed):
    """The exit rule for one text; shapes fixed per bucket."""
    mask = tf.cast(padding_mask, tf.bool)
    hidden = model.backbone.embed(token_ids, segment_ids, training=False)
    students_can_exit = criteria.students_run(speed)
    state = criterion.initial_state(1) if criterion.stateful else ()
    # (hidden, probabilities, score, done, exit layer, criterion state)
    carry = (hidden, tf.zeros([1, num_classes]), tf.zeros([1]),
             tf.constant(False), tf.constant(0), state)
    for k in range(num_layers):
      carry = tf.cond(carry[3], lambda carry=carry: carry,
                      lambda carry=carry, k=k: _run_layer(
                          model, k, carry, mask, speed, students_can_exit,
                          criterion))
    _, probs, score, _, exit_layer, _ = carry
    return probs, score, exit_layer

  bucket_lengths = tf.constant(_usable_buckets(model, buckets))

  def run(token_ids, segment_ids, padding_mask, speed):
    speed = tf.reshape(tf.cast(speed, tf.float32), [])
    # Trailing padding is dropped, then the text padded up to its bucket:
    # positions with mask 0 change nothing, wherever they are.
    length = trimmed_length(padding_mask)
    target = tf.reduce_min(tf.boolean_mask(bucket_lengths,
                                           bucket_lengths >= length))
    fit = lambda t: tf.pad(t[:, :length], [[0, 0], [0, target - length]])
    probs, score, exit_layer = compiled(fit(token_ids), fit(segment_ids),
                                        fit(padding_mask), speed)
    return early_exit_lib.outputs(probs, score, tf.reshape(exit_layer, [1]),
                                  tf.reshape(speed, [1]), flops)

  return run


def _run_layer(model, k, carry, mask, speed, students_can_exit, criterion):
  """Layer k and (when it may answer) classifier k on an undecided text."""
  hidden, probs, score, _, _, state = carry
  num_layers = model.num_layers
  hidden = model.backbone.transformer_layers[k](hidden, padding_mask=mask,
                                                training=False)

  def classify():
    log_probs = tf.nn.log_softmax(model.classifiers[k](hidden, mask,
                                                       training=False))
    new_score, new_state = criterion.step(log_probs, state, num_layers)
    done = criteria.exits(new_score, speed, k == num_layers - 1)[0]
    return (tf.exp(log_probs), new_score, done,
            criteria.advance_state(new_state, state, speed))

  if k == num_layers - 1:
    probs, score, done, state = classify()
  else:
    # At speed 0 the students are skipped (criteria.students_run), and
    # their (patience) state stays fresh, as in the loop.
    probs, score, done, state = tf.cond(
        students_can_exit, classify,
        lambda: (probs, score, tf.constant(False), state))
  return hidden, probs, score, done, tf.constant(k + 1), state


def early_exit_with_single_text(model, flops, criterion=criteria.ExitCriterion(),
                                dispatch="cond", buckets=None):
  """The early-exit function of an export with the one-text path.

  Args:
    model, flops, criterion: as for early_exit.early_exit.
    dispatch: the loop's dispatch (early_exit.DISPATCHES) for batches.
    buckets: as for single_text_early_exit.

  Returns:
    fn(token_ids, segment_ids, padding_mask, speed) -> early_exit's outputs.
    A batch of one text whose length without trailing padding is at most
    the largest bucket, with one speed value, takes the XLA program;
    anything else the tf.while_loop (which also refuses a speed of the
    wrong size).
  """
  single = single_text_early_exit(model, flops, criterion, buckets)
  longest = max(_usable_buckets(model, buckets))

  def run(token_ids, segment_ids, padding_mask, speed):
    shape = tf.shape(token_ids)
    one_text = tf.logical_and(tf.equal(shape[0], 1),
                              trimmed_length(padding_mask) <= longest)
    # A per-sample speed of a batch of one is one value: the XLA path takes
    # it as is; any other size is for the loop to refuse.
    one_text = tf.logical_and(one_text, tf.equal(tf.size(speed), 1))
    return tf.cond(
        one_text,
        lambda: single(token_ids, segment_ids, padding_mask, speed),
        lambda: early_exit_lib.early_exit(model, token_ids, segment_ids,
                                          padding_mask, speed, flops,
                                          criterion, dispatch))
  return run
