"""FastBERT: a BERT backbone with a classifier after every layer."""

import keras
import tensorflow as tf
from keras import ops

from fastbert_tf.layers.student_classifier import StudentClassifier
from fastbert_tf.models.bert_backbone import BertBackbone
from fastbert_tf.training import losses
from fastbert_tf.training import phases


@keras.saving.register_keras_serializable(package="fastbert_tf")
class FastBertClassifier(keras.Model):
  """Backbone + L-1 students + teacher, trained in two phases.

  Sublayers: `backbone` (BertBackbone with `transformer_layer_{i}`),
  `student_classifier_{i}` after transformer layer i (0-based, i < L-1) and
  `teacher_classifier` after the last layer.

  `call()` evaluates every classifier and returns logits float32
  [batch, num_layers, num_classes] (index L-1 is the teacher). Per-sample
  early exit lives in `fastbert_tf.inference.early_exit`.

  Training: `compile(optimizer, phase=...)` picks what `train_step` does:
    finetune: cross-entropy of the teacher; backbone and teacher train.
    distill:  KL(teacher, student) summed over students; students train only,
              the frozen backbone and teacher run outside the gradient tape.
    joint:    cross-entropy of every classifier, everything trains (the
              paper's "without self-distillation" ablation).
  Constructor kwargs are the architecture and round-trip via get_config
  (`layer_norm_type="uer"` reproduces the FastBERT authors' UER LayerNorm).
  """

  def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim,
               intermediate_dim, num_classes=2, max_sequence_length=512,
               num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12,
               activation="gelu", classifier_hidden_dim=128,
               classifier_num_heads=2, pooling="first", layer_norm_type="bert",
               **kwargs):
    super().__init__(**kwargs)
    if num_layers < 1:
      raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if num_classes < 2:
      raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    self.backbone = BertBackbone(
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length=max_sequence_length, num_segments=num_segments,
        dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
        activation=activation, layer_norm_type=layer_norm_type,
        name="backbone")
    head = dict(num_classes=num_classes, hidden_dim=classifier_hidden_dim,
                num_heads=classifier_num_heads, pooling=pooling,
                dropout=dropout)
    self.students = [StudentClassifier(name=f"student_classifier_{i}", **head)
                     for i in range(num_layers - 1)]
    self.teacher = StudentClassifier(name="teacher_classifier", **head)
    self._arch = dict(
        vocabulary_size=vocabulary_size, num_layers=num_layers,
        num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim, num_classes=num_classes,
        max_sequence_length=max_sequence_length, num_segments=num_segments,
        dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
        activation=activation, classifier_hidden_dim=classifier_hidden_dim,
        classifier_num_heads=classifier_num_heads, pooling=pooling,
        layer_norm_type=layer_norm_type)
    self._phase = "finetune"
    self._freeze_token_embeddings = False
    self._distill = dict(direction="teacher_student", reduction="sum",
                         teacher_dropout=False)
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
    for key in ("trainable", "dtype"):
      config.pop(key, None)
    return cls(**config)

  # -- training -----------------------------------------------------------
  def compile(self, optimizer=None, phase="finetune", kl_direction="teacher_student",
              student_reduction="sum", teacher_dropout=False,
              freeze_token_embeddings=False, **kwargs):
    """Compiles for one phase; see the class docstring for the phases.

    Args:
      optimizer: a keras optimizer, fresh for each phase (its schedule is
        sized to that phase's steps).
      phase: "finetune", "distill" or "joint".
      kl_direction: "teacher_student" (authors' code) or "student_teacher"
        (the paper's formula).
      student_reduction: "sum" (authors') or "mean" over students.
      teacher_dropout: run the frozen backbone and teacher with dropout during
        distillation, as the authors' code does (noisier soft labels).
      freeze_token_embeddings: keep the word embeddings fixed (finetune,
        joint).
    """
    self._phase = phases.check_phase(phase)
    # Validate now rather than at the first step.
    losses.distillation_loss(tf.zeros([1, 2]), [tf.zeros([1, 2])],
                             kl_direction, student_reduction)
    self._distill = dict(direction=kl_direction, reduction=student_reduction,
                         teacher_dropout=bool(teacher_dropout))
    self._freeze_token_embeddings = bool(freeze_token_embeddings)
    super().compile(optimizer=optimizer, **kwargs)

  @property
  def phase(self):
    return self._phase

  @property
  def metrics(self):
    # Listed so Keras resets them every epoch and reports true epoch means
    # (TF_NOTES trap 7: an untracked "loss" reads 0.0).
    return [self.loss_tracker] + self.accuracy_trackers

  def train_step(self, data):
    features, labels = _unpack(data)
    variables = phases.trainable_variables(self, self._phase,
                                           self._freeze_token_embeddings)
    if self._phase == "distill":
      loss, grads = self._distill_gradients(features, variables)
    else:
      if labels is None:
        raise ValueError(f"phase {self._phase!r} needs labels")
      with tf.GradientTape() as tape:
        loss = self._supervised_loss(features, labels)
      grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.loss_tracker.update_state(loss)
    return {"loss": self.loss_tracker.result()}

  def _supervised_loss(self, features, labels):
    if self._phase == "finetune":
      hidden = self.backbone(features, training=True)[-1]
      logits = self.teacher(hidden, features["padding_mask"], training=True)
      return losses.cross_entropy(labels, logits)
    logits = self(features, training=True)
    per_layer = [losses.cross_entropy(labels, logits[:, i])
                 for i in range(self.num_layers)]
    return tf.add_n(per_layer)

  def _distill_gradients(self, features, variables):
    # The frozen part runs outside the tape: no activations are kept for a
    # backward pass through the backbone, which is what makes phase 2 cheap.
    frozen_training = self._distill["teacher_dropout"]
    hidden_states = self.backbone(features, training=frozen_training)
    mask = features["padding_mask"]
    teacher_logits = self.teacher(hidden_states[-1], mask,
                                  training=frozen_training)
    hidden_states = [tf.stop_gradient(h) for h in hidden_states[:-1]]
    with tf.GradientTape() as tape:
      student_logits = [s(h, mask, training=True)
                        for s, h in zip(self.students, hidden_states)]
      loss = losses.distillation_loss(teacher_logits, student_logits,
                                      self._distill["direction"],
                                      self._distill["reduction"])
    return loss, tape.gradient(loss, variables)

  def test_step(self, data):
    features, labels = _unpack(data)
    logits = self(features, training=False)
    if labels is not None:
      self.loss_tracker.update_state(
          losses.cross_entropy(labels, logits[:, -1]))
      for i, tracker in enumerate(self.accuracy_trackers):
        tracker.update_state(labels, logits[:, i])
    return {m.name: m.result() for m in self.metrics}


def _unpack(data):
  if isinstance(data, (tuple, list)):
    return data[0], (data[1] if len(data) > 1 else None)
  return data, None
