"""BERT's transformer block, with the LayerNorm chosen by a public hook."""

import keras
from keras import ops

from fastbert_tf.layers.bert_embeddings import UerLayerNormalization


@keras.saving.register_keras_serializable(package="fastbert_tf")
class TransformerEncoder(keras.layers.Layer):
  """A post-LayerNorm transformer encoder block, BERT's.

  Self-attention, dropout, residual, LayerNorm; then a two-layer
  feed-forward block, dropout, residual, LayerNorm. The arithmetic and the
  sublayer names (`self_attention_layer`, `self_attention_layer_norm`,
  `feedforward_intermediate_dense`, `feedforward_output_dense`,
  `feedforward_layer_norm`) are keras-hub's `TransformerEncoder`'s, so
  keras-hub BertBackbone weights map one to one (checkpoints/) and the
  outputs match keras-hub's within float error (tests/test_checkpoints_*).

  Unlike keras-hub's block, the two LayerNorms come from `make_layer_norm`,
  a public method a subclass overrides to install another normalization
  (UerTransformerEncoder). keras-hub builds its LayerNorms inline, so the
  only way in was to swap its private attributes as they were set.

  Why the class is named like keras-hub's: Keras addresses each member of a
  list of layers in a weights file by its class name in snake case
  (`backbone/transformer_layers/transformer_encoder_1/...`); every model
  directory and `.keras` file written so far uses these names.

  Args:
    intermediate_dim: int, width of the feed-forward block.
    num_heads: int, attention heads; divides the input's last dimension.
    dropout: float, attention-probability and hidden dropout.
    activation: str or callable, the feed-forward activation.
    layer_norm_epsilon: float, 1e-12 for BERT checkpoints.
    kernel_initializer: initializer (or its name) of every kernel.
    bias_initializer: initializer (or its name) of every bias.
    **kwargs: `name`, `dtype` (a Keras dtype policy, passed to every
      sublayer) and the other `keras.layers.Layer` arguments.

  Examples:

  >>> block = TransformerEncoder(intermediate_dim=32, num_heads=2)
  >>> hidden = np.random.rand(1, 5, 16).astype("float32")
  >>> block(hidden, padding_mask=np.array([[1, 1, 1, 0, 0]])).shape
  TensorShape([1, 5, 16])
  """

  def __init__(self, intermediate_dim, num_heads, dropout=0.0,
               activation="gelu", layer_norm_epsilon=1e-12,
               kernel_initializer="glorot_uniform", bias_initializer="zeros",
               **kwargs):
    super().__init__(**kwargs)
    self.intermediate_dim = intermediate_dim
    self.num_heads = num_heads
    self.dropout = dropout
    self.activation = keras.activations.get(activation)
    self.layer_norm_epsilon = layer_norm_epsilon
    self.kernel_initializer = keras.initializers.get(kernel_initializer)
    self.bias_initializer = keras.initializers.get(bias_initializer)
    self.supports_masking = True

  def make_layer_norm(self, name):
    """The hook: returns a new, unbuilt LayerNorm layer named `name`.

    Called twice by `build()` (`self_attention_layer_norm`,
    `feedforward_layer_norm`). The layer takes and returns the compute dtype
    and should keep its statistics in float32 under a mixed policy.

    Args:
      name: str, the sublayer's name (part of every weight path).

    Returns:
      a keras.layers.Layer; here Keras' LayerNormalization.
    """
    return keras.layers.LayerNormalization(
        epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)

  def _dense(self, units, name, activation=None):
    return keras.layers.Dense(
        units, activation=activation,
        kernel_initializer=_clone(self.kernel_initializer),
        bias_initializer=_clone(self.bias_initializer),
        dtype=self.dtype_policy, name=name)

  def build(self, inputs_shape):
    hidden_dim = inputs_shape[-1]
    if hidden_dim % self.num_heads:
      raise ValueError(f"hidden size {hidden_dim} is not divisible by "
                       f"num_heads {self.num_heads}")
    # The attribute names are part of the weight paths of every saved model
    # (Keras walks attributes by name): keep them.
    self._self_attention_layer = keras.layers.MultiHeadAttention(
        num_heads=self.num_heads, key_dim=hidden_dim // self.num_heads,
        dropout=self.dropout,
        kernel_initializer=_clone(self.kernel_initializer),
        bias_initializer=_clone(self.bias_initializer),
        dtype=self.dtype_policy, name="self_attention_layer")
    self._self_attention_layer.build(query_shape=inputs_shape,
                                     value_shape=inputs_shape)
    self._self_attention_layer_norm = self.make_layer_norm(
        "self_attention_layer_norm")
    self._self_attention_layer_norm.build(inputs_shape)
    self._self_attention_dropout = keras.layers.Dropout(
        self.dropout, dtype=self.dtype_policy, name="self_attention_dropout")
    self._feedforward_layer_norm = self.make_layer_norm(
        "feedforward_layer_norm")
    self._feedforward_layer_norm.build(inputs_shape)
    self._feedforward_intermediate_dense = self._dense(
        self.intermediate_dim, "feedforward_intermediate_dense",
        activation=self.activation)
    self._feedforward_intermediate_dense.build(inputs_shape)
    self._feedforward_output_dense = self._dense(hidden_dim,
                                                 "feedforward_output_dense")
    self._feedforward_output_dense.build(
        tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
    self._feedforward_dropout = keras.layers.Dropout(
        self.dropout, dtype=self.dtype_policy, name="feedforward_dropout")
    self.built = True

  def call(self, inputs, padding_mask=None, training=None):
    """One block.

    Args:
      inputs: float [batch, seq, hidden] in the compute dtype.
      padding_mask: optional bool or int [batch, seq], true for real tokens
        (the only ones attended to).
      training: bool, enables dropout.

    Returns:
      [batch, seq, hidden], the compute dtype.
    """
    attention_mask = None
    if padding_mask is not None:
      # [batch, 1, seq]: every query position sees the same keys.
      attention_mask = ops.expand_dims(ops.cast(padding_mask, "int32"), 1)
    x = self._self_attention_layer(query=inputs, value=inputs,
                                   attention_mask=attention_mask,
                                   training=training)
    x = self._self_attention_dropout(x, training=training)
    x = self._self_attention_layer_norm(x + inputs)
    residual = x
    x = self._feedforward_intermediate_dense(x)
    x = self._feedforward_output_dense(x)
    x = self._feedforward_dropout(x, training=training)
    return self._feedforward_layer_norm(x + residual)

  def get_config(self):
    config = super().get_config()
    config.update(
        intermediate_dim=self.intermediate_dim, num_heads=self.num_heads,
        dropout=self.dropout,
        activation=keras.activations.serialize(self.activation),
        layer_norm_epsilon=self.layer_norm_epsilon,
        kernel_initializer=keras.initializers.serialize(
            self.kernel_initializer),
        bias_initializer=keras.initializers.serialize(self.bias_initializer))
    return config

  def compute_output_shape(self, inputs_shape):
    return inputs_shape


@keras.saving.register_keras_serializable(package="fastbert_tf")
class UerTransformerEncoder(TransformerEncoder):
  """TransformerEncoder with UER-py's LayerNorm in both places.

  The FastBERT authors' checkpoints were trained with it
  (`UerLayerNormalization`: unbiased std, epsilon outside the root). Only
  `make_layer_norm` differs; weight paths (`self_attention_layer_norm/gamma`
  ...) are the same as the BERT block's.

  Args:
    **kwargs: TransformerEncoder's.

  Examples:

  >>> block = UerTransformerEncoder(intermediate_dim=32, num_heads=2,
  ...                               layer_norm_epsilon=1e-6)
  >>> block.make_layer_norm("n")
  <UerLayerNormalization name=n, built=False>
  """

  def make_layer_norm(self, name):
    return UerLayerNormalization(epsilon=self.layer_norm_epsilon,
                                 dtype=self.dtype_policy, name=name)


# layer_norm_type -> the block that normalizes that way.
TRANSFORMER_ENCODERS = {"bert": TransformerEncoder,
                        "uer": UerTransformerEncoder}


def _clone(initializer):
  """A fresh initializer of the same config: a shared stateful initializer
  would give every sublayer the same draw."""
  return initializer.__class__.from_config(initializer.get_config())
