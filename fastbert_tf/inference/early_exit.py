"""THE early-exit loop: per-sample exit compiled into a tf.while_loop.

Evaluation, the sweep and every export call `early_exit()`; nothing else
re-implements the exit rule.

Each iteration runs transformer layer i and classifier i on the samples still
active, records the answer of those whose uncertainty is below `speed`, and
continues with the others only (gather in, scatter out), so a batch costs what
its samples need rather than what its slowest sample needs.

How the loop picks layer i's weights (`dispatch`); the answers are identical:
  "cond" (default): a binary tree of tf.cond over the layers. It converts to
    TFLite (IF; Case / switch_case does not) and LiteRT runs only the taken
    branch. TF itself lowers each cond to Switch/Merge, so the ops of the
    layers not taken still pass through its executor as dead tensors: about
    0.2 ms per iteration on 2 CPU cores, which matters at batch 1 only.
  "tensor_array": one TensorArray per weight slot holds that slot's tensor of
    every layer (references, no copies); the loop reads slot[i] and runs the
    first layer's Keras code on them (Layer.stateless_call). No branches, so
    nothing dead: the faster choice for TF / TF Serving at small batches
    (BENCHMARKS.md). Needs every layer, and every classifier, to have the
    same weight shapes (true for FastBERT). TFLite turns the arrays into
    stacked constants gathered per iteration, a copy of the layer's weights
    each time: export with "cond" for TFLite.
"""

import tensorflow as tf

from fastbert_tf.inference import criteria

OUTPUT_KEYS = ("probabilities", "label", "exit_layer", "uncertainty", "flops")
DISPATCHES = ("cond", "tensor_array")


def early_exit(model, token_ids, segment_ids, padding_mask, speed, flops,
               criterion=criteria.ExitCriterion(), dispatch="cond"):
  """Classifies a batch, each sample at the first confident layer.

  Args:
    model: a built FastBertClassifier.
    token_ids, segment_ids, padding_mask: int32 [batch, seq].
    speed: float32 threshold(s) in [0, 1]: a scalar for the whole batch,
      or [batch], one per sample (each sample exits where its own speed
      says). A sample exits at the first layer whose criterion score is
      < speed; 0 = always the teacher.
    flops: FlopsTable of the model (for the per-sample `flops` output).
    criterion: criteria.ExitCriterion; normalized entropy by default.
    dispatch: "cond" or "tensor_array", how the loop selects layer i (see
      the module docstring); same outputs either way.

  Returns:
    dict of per-sample outputs:
      probabilities float32 [batch, num_classes], label int32 [batch],
      exit_layer int32 [batch] (1-based), uncertainty float32 [batch] (the
      answering classifier's criterion score), flops float32 [batch] (paper
      unit).
  """
  if dispatch not in DISPATCHES:
    raise ValueError(f"dispatch must be one of {DISPATCHES}, got {dispatch!r}")
  num_layers = model.num_layers
  num_classes = model.num_classes
  batch = tf.shape(token_ids)[0]
  speed = per_sample_speed(speed, batch)
  mask = tf.cast(padding_mask, tf.bool)
  hidden = model.backbone.embed(token_ids, segment_ids, training=False)
  hidden_dim = hidden.shape[-1]

  # No uncertainty is below a speed of 0, so students cannot answer: when
  # every sample's speed is 0, skip them and their bookkeeping, and the
  # batch costs the plain model (layers + teacher) plus the loop's control
  # flow.
  students_can_exit = tf.reduce_any(criteria.students_run(speed))
  run_layer = (_cond_dispatch if dispatch == "cond" else
               _tensor_array_dispatch)(model, students_can_exit)

  def record(i, logits, x, m, active, sp, results, state):
    """Writes the answers of the samples done at layer i+1, drops them."""
    log_probs = tf.nn.log_softmax(logits)
    u, new_state = criterion.step(log_probs, state, num_layers)
    # A speed-0 sample in a batch whose other samples may exit early sees
    # the students run, but answers as if alone (criteria.advance_state).
    state = criteria.advance_state(new_state, state, sp)
    done = criteria.exits(u, sp, tf.equal(i, num_layers - 1))
    # One Where per side and plain gathers instead of a boolean_mask (its
    # own Where, reshapes) per tensor: at batch 1 every op costs time.
    done_rows = tf.where(done)[:, 0]
    keep_rows = tf.where(tf.logical_not(done))[:, 0]
    # probabilities | uncertainty | exit layer, one row per sample, so a
    # single scatter writes every output.
    layer = tf.fill([tf.shape(u)[0], 1], tf.cast(i + 1, tf.float32))
    answer = tf.concat([tf.exp(log_probs), u[:, None], layer], axis=1)
    results = tf.tensor_scatter_nd_update(
        results, tf.gather(active, done_rows)[:, None],
        tf.gather(answer, done_rows))
    keep = lambda t: tf.gather(t, keep_rows)
    return (keep(x), keep(m), keep(active), keep(sp), results,
            tuple(map(keep, state)))

  def body(i, x, m, active, sp, results, *state):
    x, logits = run_layer(i, x, m)
    # When no sample can exit early only the teacher's answer is recorded:
    # the students' layers pass the batch through untouched.
    x, m, active, sp, results, state = tf.cond(
        tf.logical_or(students_can_exit, tf.equal(i, num_layers - 1)),
        lambda: record(i, logits, x, m, active, sp, results, state),
        lambda: (x, m, active, sp, results, state))
    return (i + 1, x, m, active, sp, results, *state)

  def cond(i, x, m, active, *unused):
    return tf.logical_and(i < num_layers, tf.size(active) > 0)

  loop_vars = (tf.constant(0), hidden, mask, tf.range(batch), speed,
               tf.zeros([batch, num_classes + 2]))
  invariants = (tf.TensorShape([]), tf.TensorShape([None, None, hidden_dim]),
                tf.TensorShape([None, None]), tf.TensorShape([None]),
                tf.TensorShape([None]),
                tf.TensorShape([None, num_classes + 2]))
  # Only stateful criteria (patience) carry per-sample state through the loop;
  # at speed 0 it stays fresh, so skipped students never count as agreeing.
  state = criterion.initial_state(batch) if criterion.stateful else ()
  loop_vars += tuple(state)
  invariants += tuple(tf.TensorShape([None]) for _ in state)
  _, _, _, _, _, results, *_ = tf.while_loop(
      cond, body, loop_vars, shape_invariants=invariants)
  return outputs(results[:, :num_classes], results[:, num_classes],
                 tf.cast(results[:, num_classes + 1], tf.int32), speed, flops)


def outputs(probabilities, uncertainty, exit_layer, speed, flops):
  """The OUTPUT_KEYS dict from what answered each sample.

  Args:
    probabilities: float32 [batch, num_classes]; uncertainty: float32
      [batch]; exit_layer: int32 [batch], 1-based; speed: float32 [batch].
    flops: FlopsTable.
  """
  flops_by_exit = tf.constant([0.0] + [float(f) for f in flops.cumulative()])
  # What each sample costs alone: a speed-0 sample needs no student.
  sample_flops = tf.where(criteria.students_run(speed),
                          tf.gather(flops_by_exit, exit_layer),
                          float(flops.baseline))
  return dict(probabilities=probabilities,
              label=tf.argmax(probabilities, axis=-1, output_type=tf.int32),
              exit_layer=exit_layer, uncertainty=uncertainty,
              flops=sample_flops)


def per_sample_speed(speed, batch):
  """float32 scalar, [1] or [batch] speed -> float32 [batch].

  Raises (in the graph) InvalidArgumentError when speed has another size.
  """
  speed = tf.reshape(tf.cast(speed, tf.float32), [-1])
  size = tf.size(speed)
  check = tf.debugging.Assert(
      tf.logical_or(tf.equal(size, 1), tf.equal(size, batch)),
      ["speed must be a scalar or hold one value per sample; got", size,
       "values for a batch of", batch])
  with tf.control_dependencies([check]):
    return tf.broadcast_to(speed, tf.reshape(batch, [1]))


def _cond_dispatch(model, students_can_exit):
  """run_layer(i, x, m) -> (layer i's output, classifier i's logits), the
  layer picked by a tf.cond tree."""
  num_layers = model.num_layers

  def run_layer(i, x, m):
    def branch(k):
      def fn():
        y = model.backbone.transformer_layers[k](x, padding_mask=m,
                                                  training=False)
        classify = lambda: model.classifiers[k](y, m, training=False)
        if k == num_layers - 1:
          return y, classify()
        return y, tf.cond(students_can_exit, classify,
                          lambda: _placeholder_logits(y, model.num_classes))
      return fn
    return _select(i, 0, num_layers, branch)

  return run_layer


def _tensor_array_dispatch(model, students_can_exit):
  """run_layer(i, x, m) as _cond_dispatch's, layer i's weights read from
  TensorArrays and run through layer 0's (and classifier 0's) code."""
  layers, classifiers = model.backbone.transformer_layers, model.classifiers
  layer_weights, layer_state = _weight_arrays(layers)
  classifier_weights, classifier_state = _weight_arrays(classifiers)
  last = model.num_layers - 1

  def run_layer(i, x, m):
    y, _ = layers[0].stateless_call([w.read(i) for w in layer_weights],
                                    layer_state, x, padding_mask=m,
                                    training=False)

    def classify():
      logits, _ = classifiers[0].stateless_call(
          [w.read(i) for w in classifier_weights], classifier_state, y, m,
          training=False)
      return logits

    return y, tf.cond(tf.logical_or(students_can_exit, tf.equal(i, last)),
                      classify,
                      lambda: _placeholder_logits(y, model.num_classes))

  return run_layer


def _placeholder_logits(hidden, num_classes):
  """Zeros in place of a skipped student's logits, never read: at speed 0
  `record` runs for the teacher only."""
  return tf.zeros([tf.shape(hidden)[0], num_classes])


def _weight_arrays(layers):
  """Per weight slot j, a TensorArray whose element k is layers[k]'s j-th
  trainable weight; plus layers[0]'s non-trainable state (dropout seeds,
  unused at inference) for stateless_call.

  Raises:
    ValueError: the layers' weights differ in number or shape.
  """
  slots = [w.shape for w in layers[0].trainable_variables]
  for layer in layers:
    shapes = [w.shape for w in layer.trainable_variables]
    if shapes != slots:
      raise ValueError(f"dispatch='tensor_array' needs layers of one shape: "
                       f"{layer.name} has weight shapes {shapes}, "
                       f"{layers[0].name} {slots}")
  arrays = []
  for j, weight in enumerate(layers[0].trainable_variables):
    array = tf.TensorArray(weight.dtype, size=len(layers),
                           element_shape=weight.shape, clear_after_read=False)
    for k, layer in enumerate(layers):
      array = array.write(k, layer.trainable_variables[j].value)
    arrays.append(array)
  return arrays, [v.value for v in layers[0].non_trainable_variables]


def _select(i, lo, hi, branch):
  """Runs branch(k)() for k = i, as a balanced tree of tf.cond over [lo, hi)."""
  if hi - lo == 1:
    return branch(lo)()
  mid = (lo + hi) // 2
  return tf.cond(i < mid, lambda: _select(i, lo, mid, branch),
                 lambda: _select(i, mid, hi, branch))


def compiled_early_exit(model, flops, criterion=criteria.ExitCriterion(),
                        dispatch="cond"):
  """A tf.function over `early_exit` with a fixed input signature, traced once
  for any batch size and sequence length."""
  ids = tf.TensorSpec([None, None], tf.int32)

  # speed: a scalar or one per sample (unknown rank, so both trace once).
  @tf.function(input_signature=[ids, ids, ids, tf.TensorSpec(None, tf.float32)])
  def run(token_ids, segment_ids, padding_mask, speed):
    return early_exit(model, token_ids, segment_ids, padding_mask, speed, flops,
                      criterion, dispatch)

  return run
