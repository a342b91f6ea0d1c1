"""BERT input embeddings: token + position + segment, LayerNorm, dropout."""

import keras
import keras_hub
from keras import ops

LAYER_NORM_TYPES = ("bert", "uer")


@keras.saving.register_keras_serializable(package="fastbert_tf")
class UerLayerNormalization(keras.layers.Layer):
  """UER-py's LayerNorm: `gamma * (x - mean) / (std + epsilon) + beta`.

  Unlike BERT's (and Keras') LayerNorm, the standard deviation is the
  unbiased one (divides by n - 1) and epsilon is added outside the square
  root. The FastBERT authors' checkpoints were trained with it; no choice of
  Keras LayerNormalization epsilon reproduces it exactly. Weights are named
  gamma/beta like Keras' so both kinds share checkpoint paths.

  Args:
    epsilon: float, UER uses 1e-6.
    **kwargs: `name`, `dtype` and the other `keras.layers.Layer` arguments.
      Outputs are in the compute dtype; the statistics are float32.

  Examples:

  >>> norm = UerLayerNormalization(epsilon=1e-6)
  >>> norm(np.array([[1.0, 2.0, 3.0]], "float32"))   # std 1 (unbiased)
  <tf.Tensor: shape=(1, 3), dtype=float32, numpy=array([[-1., 0., 1.]], ...)>
  """

  def __init__(self, epsilon=1e-6, **kwargs):
    super().__init__(**kwargs)
    self.epsilon = epsilon
    # Inputs arrive in the compute dtype and are cast to float32 in call().
    self.autocast = False

  def build(self, input_shape):
    dim = (input_shape[-1],)
    self.gamma = self.add_weight(name="gamma", shape=dim, initializer="ones",
                                 autocast=False)
    self.beta = self.add_weight(name="beta", shape=dim, initializer="zeros",
                                autocast=False)
    self.built = True

  def call(self, inputs):
    """float [..., dim] -> float [..., dim] (the compute dtype),
    normalised over the last axis; statistics in float32 whatever the
    policy, as Keras' LayerNormalization does."""
    x = ops.cast(inputs, "float32")
    mean = ops.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    dim = ops.cast(ops.shape(x)[-1], "float32")
    variance = ops.sum(ops.square(centered), axis=-1, keepdims=True) / (
        dim - 1.0)
    gamma = ops.cast(self.gamma, "float32")
    beta = ops.cast(self.beta, "float32")
    out = gamma * centered / (ops.sqrt(variance) + self.epsilon) + beta
    return ops.cast(out, self.compute_dtype)

  def get_config(self):
    config = super().get_config()
    config.update(epsilon=self.epsilon)
    return config


def layer_normalization(layer_norm_type, epsilon, name, dtype=None):
  """A LayerNorm of the given kind: "bert" (Keras') or "uer"."""
  if layer_norm_type == "bert":
    return keras.layers.LayerNormalization(epsilon=epsilon, name=name,
                                           dtype=dtype)
  if layer_norm_type == "uer":
    return UerLayerNormalization(epsilon=epsilon, name=name, dtype=dtype)
  raise ValueError(f"layer_norm_type {layer_norm_type!r}, expected one of "
                   f"{LAYER_NORM_TYPES}")


@keras.saving.register_keras_serializable(package="fastbert_tf")
class BertEmbeddings(keras.layers.Layer):
  """Sums token, learned-position and segment embeddings, then LayerNorm.

  Sublayer names follow keras-hub's BertBackbone (`token_embedding`,
  `position_embedding`, `segment_embedding`, `embeddings_layer_norm`) so the
  checkpoint converters can address them.

  Args:
    vocabulary_size: int, number of token ids.
    hidden_dim: int, embedding width.
    max_sequence_length: int, number of learned positions.
    num_segments: int, number of segment (token type) ids.
    dropout: float, dropout rate after the LayerNorm.
    layer_norm_epsilon: float. BERT checkpoints use 1e-12; Keras' default of
      1e-3 would silently change every activation, so it is explicit here.
    layer_norm_type: "bert" (Keras' LayerNormalization) or "uer"
      (UerLayerNormalization, for the FastBERT authors' checkpoints).
    **kwargs: `name`, `dtype` (a Keras dtype policy, passed to every
      sublayer) and the other `keras.layers.Layer` arguments.

  Examples:

  >>> embeddings = BertEmbeddings(vocabulary_size=34, hidden_dim=16,
  ...                             max_sequence_length=32)
  >>> ids = np.array([[2, 7, 9, 3]], "int32")
  >>> embeddings(ids, np.zeros_like(ids)).shape
  TensorShape([1, 4, 16])
  """

  def __init__(self, vocabulary_size, hidden_dim, max_sequence_length,
               num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12,
               layer_norm_type="bert", **kwargs):
    super().__init__(**kwargs)
    self.vocabulary_size = vocabulary_size
    self.hidden_dim = hidden_dim
    self.max_sequence_length = max_sequence_length
    self.num_segments = num_segments
    self.dropout = dropout
    self.layer_norm_epsilon = layer_norm_epsilon
    self.layer_norm_type = layer_norm_type
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    policy = self.dtype_policy
    self.token_embedding = keras.layers.Embedding(
        vocabulary_size, hidden_dim, embeddings_initializer=init,
        dtype=policy, name="token_embedding")
    self.position_embedding = keras_hub.layers.PositionEmbedding(
        max_sequence_length, initializer=init, dtype=policy,
        name="position_embedding")
    self.segment_embedding = keras.layers.Embedding(
        num_segments, hidden_dim, embeddings_initializer=init, dtype=policy,
        name="segment_embedding")
    self.layer_norm = layer_normalization(
        layer_norm_type, layer_norm_epsilon, name="embeddings_layer_norm",
        dtype=policy)
    self.dropout_layer = keras.layers.Dropout(
        dropout, dtype=policy, name="embeddings_dropout")

  def build(self, token_ids_shape):
    self.token_embedding.build(token_ids_shape)
    self.segment_embedding.build(token_ids_shape)
    hidden_shape = tuple(token_ids_shape) + (self.hidden_dim,)
    self.position_embedding.build(hidden_shape)
    self.layer_norm.build(hidden_shape)
    self.built = True

  def call(self, token_ids, segment_ids, training=None):
    """Embeds a batch.

    Args:
      token_ids: int32 [batch, seq].
      segment_ids: int32 [batch, seq].
      training: bool, enables dropout.

    Returns:
      [batch, seq, hidden_dim] in the compute dtype.
    """
    tokens = self.token_embedding(token_ids)
    x = tokens + self.position_embedding(tokens)
    x = x + self.segment_embedding(segment_ids)
    x = self.layer_norm(x)
    return self.dropout_layer(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(
        vocabulary_size=self.vocabulary_size, hidden_dim=self.hidden_dim,
        max_sequence_length=self.max_sequence_length,
        num_segments=self.num_segments, dropout=self.dropout,
        layer_norm_epsilon=self.layer_norm_epsilon,
        layer_norm_type=self.layer_norm_type)
    return config
