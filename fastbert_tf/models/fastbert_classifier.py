"""FastBERT: a BERT backbone with a classifier after every layer."""

import keras
import tensorflow as tf
from keras import ops

from fastbert_tf.layers.student_classifier import StudentClassifier
from fastbert_tf.models import architecture
from fastbert_tf.models import losses
from fastbert_tf.models import phases
from fastbert_tf.models.bert_backbone import FastBertBackbone


@keras.saving.register_keras_serializable(package="fastbert_tf")
class FastBertClassifier(keras.Model):
  """A FastBertBackbone with a classifier after every layer (L-1 students
  and the teacher), trained in two phases.

  Built like keras-hub's tasks: the backbone is an argument, and
  `get_config()` holds its serialized config (`from_config` rebuilds it).
  `from_architecture(**flat_kwargs)` builds both from the flat dict that
  flags and presets use (models.architecture).

  Sublayers: `backbone` (with `transformer_layer_{i}`),
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

  The classifiers run under the backbone's dtype policy (as keras-hub's
  heads do); logits, losses and LayerNorm statistics stay float32.

  Args:
    backbone: a FastBertBackbone.
    num_classes: int, >= 2.
    classifier_hidden_dim: int, every classifier's width (128 in the paper).
    classifier_num_heads: int, every classifier's attention heads (2).
    pooling: "first" ([CLS]), "mean" or "max", for every classifier.
    dropout: float, the classifiers' dropout.
    exit_temperatures: None, or L floats > 0: classifier i's logits are
      divided by the i-th (per-exit calibration; None = all 1).
    **kwargs: `name`, `dtype` (must be the backbone's policy; it is by
      default) and the other `keras.Model` arguments.

  Examples:

  >>> backbone = FastBertBackbone(vocabulary_size=30522, num_layers=12,
  ...                             num_heads=12, hidden_dim=768,
  ...                             intermediate_dim=3072)
  >>> model = FastBertClassifier(backbone, num_classes=2)
  >>> model.build()
  >>> model.phase_config = phases.PhaseConfig("finetune")
  >>> model.compile(keras.optimizers.AdamW(2e-5))
  >>> model.fit(train_ds, validation_data=dev_ds)   # (features, labels)
  """

  def __init__(self, backbone, num_classes=2, classifier_hidden_dim=128,
               classifier_num_heads=2, pooling="first", dropout=0.1,
               exit_temperatures=None, **kwargs):
    if not isinstance(backbone, FastBertBackbone):
      raise TypeError(f"backbone must be a FastBertBackbone, got "
                      f"{type(backbone).__name__}")
    dtype = kwargs.pop("dtype", None) or backbone.dtype_policy
    if keras.dtype_policies.get(dtype).name != backbone.dtype_policy.name:
      raise ValueError(
          f"dtype {keras.dtype_policies.get(dtype).name!r} is not the "
          f"backbone's {backbone.dtype_policy.name!r}: build the backbone "
          "with the policy the model should run in")
    super().__init__(dtype=backbone.dtype_policy, **kwargs)
    if num_classes < 2:
      raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    self.backbone = backbone
    self.num_classes = num_classes
    self.classifier_hidden_dim = classifier_hidden_dim
    self.classifier_num_heads = classifier_num_heads
    self.pooling = pooling
    self.dropout = dropout
    head = dict(num_classes=num_classes, hidden_dim=classifier_hidden_dim,
                num_heads=classifier_num_heads, pooling=pooling,
                dropout=dropout, dtype=self.dtype_policy)
    temperatures = architecture.check_temperatures(exit_temperatures,
                                                   backbone.num_layers)
    self.students = [StudentClassifier(name=f"student_classifier_{i}",
                                       temperature=temperatures[i], **head)
                     for i in range(backbone.num_layers - 1)]
    self.teacher = StudentClassifier(name="teacher_classifier",
                                     temperature=temperatures[-1], **head)
    self._phase_config = phases.PhaseConfig()
    # The phase the compiled train step was built for (None: not compiled).
    self._compiled_phase_config = None
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.accuracy_trackers = [
        keras.metrics.SparseCategoricalAccuracy(name=f"accuracy_layer_{i + 1}")
        for i in range(backbone.num_layers)
    ]

  @classmethod
  def from_architecture(cls, **kwargs):
    """Builds the backbone and the model from one flat dict.

    Args:
      **kwargs: FastBertBackbone's and this class's arguments side by side
        (models.architecture: `vocabulary_size`, `num_layers`, ...,
        `num_classes`, `classifier_hidden_dim`, ...); `dropout` and `dtype`
        go to both.

    Returns:
      a FastBertClassifier (not built).

    Raises:
      TypeError: an argument neither takes.
    """
    backbone_kwargs, head_kwargs = architecture.split(kwargs)
    return cls(FastBertBackbone(**backbone_kwargs), **head_kwargs)

  # -- architecture -------------------------------------------------------
  @property
  def num_layers(self):
    return self.backbone.num_layers

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
    values = architecture.check_temperatures(temperatures, self.num_layers)
    for classifier, t in zip(self.classifiers, values):
      classifier.temperature = t
    self.train_function = self.test_function = self.predict_function = None

  @property
  def classifiers(self):
    """All L classifiers in layer order; the last is the teacher."""
    return self.students + [self.teacher]

  def build(self, input_shape=None):
    if not self.backbone.built:  # from_config builds it from build_config
      self.backbone.build((None, None))
    hidden_shape = (None, None, self.backbone.hidden_dim)
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
    temperatures = self.exit_temperatures
    config.update(
        backbone=keras.saving.serialize_keras_object(self.backbone),
        num_classes=self.num_classes,
        classifier_hidden_dim=self.classifier_hidden_dim,
        classifier_num_heads=self.classifier_num_heads, pooling=self.pooling,
        dropout=self.dropout,
        # None when uncalibrated, so the config says "as trained".
        exit_temperatures=(None if all(t == 1.0 for t in temperatures)
                           else temperatures))
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config.pop("trainable", None)
    if "backbone" not in config:
      # A flat config: model directories and .keras files written before
      # the backbone became an argument.
      return cls.from_architecture(**config)
    if isinstance(config["backbone"], dict):
      config["backbone"] = keras.saving.deserialize_keras_object(
          config["backbone"])
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
      per_example, grads = phases.distill_gradients(
          self, features, sample_weight, variables)
    else:
      if labels is None:
        raise ValueError(f"phase {config.phase!r} needs labels")
      with tf.GradientTape() as tape:
        per_example = phases.supervised_losses(self, features, labels)
        loss = tf.nn.compute_average_loss(per_example,
                                          sample_weight=sample_weight)
        scaled = self.optimizer.scale_loss(loss)
      grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.loss_tracker.update_state(per_example, sample_weight=sample_weight)
    return {"loss": self.loss_tracker.result()}

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

