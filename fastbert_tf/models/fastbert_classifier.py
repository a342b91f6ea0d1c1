"""FastBERT: a BERT backbone with a classifier after every layer."""

import keras
import tensorflow as tf
from keras import ops

from fastbert_tf.layers.student_classifier import StudentClassifier
from fastbert_tf.models import losses
from fastbert_tf.models import phases
from fastbert_tf.models.bert_backbone import FastBertBackbone


@keras.saving.register_keras_serializable(package="fastbert_tf")
class FastBertClassifier(keras.Model):
  """Backbone + L-1 students + teacher, trained in two phases.

  Sublayers: `backbone` (BertBackbone with `transformer_layer_{i}`),
  `student_classifier_{i}` after transformer layer i (0-based, i < L-1) and
  `teacher_classifier` after the last layer.

  `call()` (and so `predict()`) evaluates EVERY classifier and returns
  logits float32 [batch, num_layers, num_classes] (index L-1 is the
  teacher): no early exit. Per-sample early exit is
  `fastbert_tf.inference.early_exit` (or `fastbert_tf.Predictor`).

  Training: set `phase_config` (models.phases.PhaseConfig), then the usual
  `compile(optimizer)` and `fit()`. What `train_step` does:
    finetune: cross-entropy of the teacher; backbone and teacher train.
    distill:  KL(teacher, student) summed over students; students train only,
              the frozen backbone and teacher run outside the gradient tape.
    joint:    cross-entropy of every classifier, everything trains (the
              paper's "without self-distillation" ablation).
  Losses are averaged over the global batch (right for any number of
  replicas under tf.distribute), honour `sample_weight`, and are scaled
  under a mixed_float16 policy (compile wraps the optimizer in Keras'
  LossScaleOptimizer). compile() takes no `loss` or `metrics`: the model
  computes its own loss per phase and reports accuracy per layer.

  Constructor kwargs are the architecture and round-trip via get_config
  (`layer_norm_type="uer"` reproduces the FastBERT authors' UER LayerNorm);
  `dtype` (a Keras dtype policy, e.g. "mixed_bfloat16") reaches every
  sublayer, while logits, losses and LayerNorm statistics stay float32.

  Args:
    vocabulary_size: int, number of token ids.
    num_layers: int, transformer layers (L); one classifier after each.
    num_heads: int, attention heads per transformer layer.
    hidden_dim: int, the backbone's width.
    intermediate_dim: int, the feed-forward width.
    num_classes: int, >= 2.
    max_sequence_length: int, learned positions.
    num_segments: int, segment ids (3 for UER checkpoints).
    dropout: float, backbone and classifier dropout.
    layer_norm_epsilon: float, 1e-12 for BERT checkpoints.
    activation: str, FFN activation: "gelu" (exact) or "gelu_approximate".
    classifier_hidden_dim: int, every classifier's width (128 in the paper).
    classifier_num_heads: int, every classifier's attention heads (2).
    pooling: "first" ([CLS]), "mean" or "max", for every classifier.
    layer_norm_type: "bert" or "uer" (UER-py's LayerNorm everywhere).
    exit_temperatures: None, or L floats > 0: classifier i's logits are
      divided by the i-th (per-exit calibration; None = all 1).
    dtype: a Keras dtype policy (or its name) for every sublayer; logits,
      losses and LayerNorm statistics stay float32.
    **kwargs: `name` and the other `keras.Model` arguments.

  Examples:

  >>> model = FastBertClassifier(vocabulary_size=30522, num_layers=12,
  ...                            num_heads=12, hidden_dim=768,
  ...                            intermediate_dim=3072, num_classes=2)
  >>> model.build()
  >>> model.phase_config = phases.PhaseConfig("finetune")
  >>> model.compile(keras.optimizers.AdamW(2e-5))
  >>> model.fit(train_ds, validation_data=dev_ds)   # (features, labels)
  """

  def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim,
               intermediate_dim, num_classes=2, max_sequence_length=512,
               num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12,
               activation="gelu", classifier_hidden_dim=128,
               classifier_num_heads=2, pooling="first", layer_norm_type="bert",
               exit_temperatures=None, dtype=None, **kwargs):
    super().__init__(dtype=dtype, **kwargs)
    if num_layers < 1:
      raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if num_classes < 2:
      raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    self.backbone = FastBertBackbone(
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length=max_sequence_length, num_segments=num_segments,
        dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
        activation=activation, layer_norm_type=layer_norm_type,
        dtype=self.dtype_policy, name="backbone")
    head = dict(num_classes=num_classes, hidden_dim=classifier_hidden_dim,
                num_heads=classifier_num_heads, pooling=pooling,
                dropout=dropout, dtype=self.dtype_policy)
    temperatures = _check_temperatures(exit_temperatures, num_layers)
    self.students = [StudentClassifier(name=f"student_classifier_{i}",
                                       temperature=temperatures[i], **head)
                     for i in range(num_layers - 1)]
    self.teacher = StudentClassifier(name="teacher_classifier",
                                     temperature=temperatures[-1], **head)
    self._arch = dict(
        vocabulary_size=vocabulary_size, num_layers=num_layers,
        num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim, num_classes=num_classes,
        max_sequence_length=max_sequence_length, num_segments=num_segments,
        dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
        activation=activation, classifier_hidden_dim=classifier_hidden_dim,
        classifier_num_heads=classifier_num_heads, pooling=pooling,
        layer_norm_type=layer_norm_type,
        exit_temperatures=None if exit_temperatures is None else
        list(temperatures))
    self._phase_config = phases.PhaseConfig()
    # The phase the compiled train step was built for (None: not compiled).
    self._compiled_phase_config = None
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.accuracy_trackers = [
        keras.metrics.SparseCategoricalAccuracy(name=f"accuracy_layer_{i + 1}")
        for i in range(num_layers)
    ]

  # -- architecture -------------------------------------------------------
  @property
  def num_layers(self):
    return self._arch["num_layers"]

  @property
  def num_classes(self):
    return self._arch["num_classes"]

  @property
  def exit_temperatures(self):
    """list of L floats: each classifier's logit temperature (1 = as
    trained)."""
    return [c.temperature for c in self.classifiers]

  def set_exit_temperatures(self, temperatures):
    """Sets every classifier's temperature (None: back to 1), in the config
    too, and drops traced functions so they see the new values.

    Args:
      temperatures: None or a sequence of L floats > 0.
    """
    values = _check_temperatures(temperatures, self.num_layers)
    for classifier, t in zip(self.classifiers, values):
      classifier.temperature = t
    self._arch["exit_temperatures"] = (None if temperatures is None
                                       else list(values))
    self.train_function = self.test_function = self.predict_function = None

  @property
  def classifiers(self):
    """All L classifiers in layer order; the last is the teacher."""
    return self.students + [self.teacher]

  def build(self, input_shape=None):
    shape = (None, None)
    self.backbone.build(shape)
    hidden_shape = (None, None, self._arch["hidden_dim"])
    for classifier in self.classifiers:
      classifier.build(hidden_shape)
    self.built = True

  def call(self, inputs, training=None):
    """Every classifier's logits.

    Args:
      inputs: dict of int32 [batch, seq] `token_ids`, `segment_ids`,
        `padding_mask`.
      training: bool.

    Returns:
      float32 [batch, num_layers, num_classes].
    """
    hidden_states = self.backbone(inputs, training=training)
    mask = inputs["padding_mask"]
    logits = [c(h, mask, training=training)
              for c, h in zip(self.classifiers, hidden_states)]
    return ops.stack(logits, axis=1)

  def get_config(self):
    config = super().get_config()
    config.update(self._arch)
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config.pop("trainable", None)
    return cls(**config)

  # -- training -----------------------------------------------------------
  @property
  def phase(self):
    return self.phase_config.phase

  @property
  def phase_config(self):
    """models.phases.PhaseConfig: what `train_step` does.

    `train_step` reads it when Keras traces it, so setting another phase on
    a compiled model drops the traced step: the next `fit` traces again and
    refuses to run until `compile()` has given the new phase its own
    optimizer (the phases train different variables).
    """
    return self._phase_config

  @phase_config.setter
  def phase_config(self, config):
    if not isinstance(config, phases.PhaseConfig):
      raise TypeError(f"phase_config must be a phases.PhaseConfig, got "
                      f"{type(config).__name__}")
    self._phase_config = config
    if getattr(self, "train_function", None) is not None:
      self.train_function = None

  def compile(self, optimizer="adamw", **kwargs):
    """Keras' compile, without `loss` / `metrics` (see the class docstring).

    Raises:
      ValueError: a loss or metrics were passed; they would be ignored.
    """
    given = sorted(k for k in ("loss", "loss_weights", "metrics",
                               "weighted_metrics") if kwargs.get(k))
    if given:
      raise ValueError(
          f"FastBertClassifier.compile() takes no {given}: the loss is the "
          "phase's own (set model.phase_config) and accuracy is reported "
          "per layer (accuracy_layer_1 ... accuracy_layer_L)")
    for key in ("loss", "loss_weights", "metrics", "weighted_metrics"):
      kwargs.pop(key, None)
    super().compile(optimizer=optimizer, **kwargs)
    self._compiled_phase_config = self._phase_config

  @property
  def metrics(self):
    # Listed so Keras resets them every epoch and reports true epoch means
    # (TF_NOTES trap 7: an untracked "loss" reads 0.0).
    return [self.loss_tracker] + self.accuracy_trackers

  def train_step(self, data):
    features, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(
        data)
    config = self.phase_config
    if config != self._compiled_phase_config:
      raise ValueError(
          f"phase_config is {config} but the model was compiled for "
          f"{self._compiled_phase_config}: call compile() again after "
          "changing the phase (its optimizer trains other variables)")
    variables = phases.trainable_variables(self, config)
    if config.phase == "distill":
      per_example, loss, grads = self._distill_gradients(
          features, sample_weight, variables)
    else:
      if labels is None:
        raise ValueError(f"phase {config.phase!r} needs labels")
      with tf.GradientTape() as tape:
        per_example = self._supervised_losses(features, labels)
        loss = tf.nn.compute_average_loss(per_example,
                                          sample_weight=sample_weight)
        scaled = self.optimizer.scale_loss(loss)
      grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.loss_tracker.update_state(per_example, sample_weight=sample_weight)
    return {"loss": self.loss_tracker.result()}

  def _supervised_losses(self, features, labels):
    """Per-example cross-entropy: the teacher's (finetune) or the sum over
    every classifier (joint). float32 [batch]."""
    if self.phase_config.phase == "finetune":
      hidden = self.backbone(features, training=True)[-1]
      logits = self.teacher(hidden, features["padding_mask"], training=True)
      return losses.cross_entropy(labels, logits)
    logits = self(features, training=True)
    return tf.add_n([losses.cross_entropy(labels, logits[:, i])
                     for i in range(self.num_layers)])

  def _distill_gradients(self, features, sample_weight, variables):
    # The frozen part runs outside the tape: no activations are kept for a
    # backward pass through the backbone, which is what makes phase 2 cheap.
    config = self.phase_config
    hidden_states = self.backbone(features, training=config.teacher_dropout)
    mask = features["padding_mask"]
    teacher_logits = self.teacher(hidden_states[-1], mask,
                                  training=config.teacher_dropout)
    hidden_states = [tf.stop_gradient(h) for h in hidden_states[:-1]]
    with tf.GradientTape() as tape:
      student_logits = [s(h, mask, training=True)
                        for s, h in zip(self.students, hidden_states)]
      per_example = losses.distillation_loss(
          teacher_logits, student_logits, config.kl_direction,
          config.student_reduction, config.distill_temperature)
      loss = tf.nn.compute_average_loss(per_example,
                                        sample_weight=sample_weight)
      scaled = self.optimizer.scale_loss(loss)
    return per_example, loss, tape.gradient(scaled, variables)

  def test_step(self, data):
    features, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(
        data)
    logits = self(features, training=False)
    if labels is not None:
      self.loss_tracker.update_state(
          losses.cross_entropy(labels, logits[:, -1]),
          sample_weight=sample_weight)
      for i, tracker in enumerate(self.accuracy_trackers):
        tracker.update_state(labels, logits[:, i], sample_weight=sample_weight)
    return {m.name: m.result() for m in self.metrics}


def _check_temperatures(temperatures, num_layers):
  """L floats, all 1.0 for None.

  Raises:
    ValueError: not L values, or one not > 0.
  """
  if temperatures is None:
    return [1.0] * num_layers
  values = [float(t) for t in temperatures]
  if len(values) != num_layers or not all(t > 0 for t in values):
    raise ValueError(f"exit_temperatures must be {num_layers} numbers > 0, "
                     f"got {temperatures}")
  return values
