"""BERT input embeddings: token + position + segment, LayerNorm, dropout."""

import keras
import keras_hub


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
  """

  def __init__(self, vocabulary_size, hidden_dim, max_sequence_length,
               num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12,
               **kwargs):
    super().__init__(**kwargs)
    self.vocabulary_size = vocabulary_size
    self.hidden_dim = hidden_dim
    self.max_sequence_length = max_sequence_length
    self.num_segments = num_segments
    self.dropout = dropout
    self.layer_norm_epsilon = layer_norm_epsilon
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    self.token_embedding = keras.layers.Embedding(
        vocabulary_size, hidden_dim, embeddings_initializer=init,
        name="token_embedding")
    self.position_embedding = keras_hub.layers.PositionEmbedding(
        max_sequence_length, initializer=init, name="position_embedding")
    self.segment_embedding = keras.layers.Embedding(
        num_segments, hidden_dim, embeddings_initializer=init,
        name="segment_embedding")
    self.layer_norm = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name="embeddings_layer_norm")
    self.dropout_layer = keras.layers.Dropout(dropout,
                                              name="embeddings_dropout")

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
      float32 [batch, seq, hidden_dim].
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
        layer_norm_epsilon=self.layer_norm_epsilon)
    return config
