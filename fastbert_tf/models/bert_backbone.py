"""FastBertBackbone: the BERT encoder, exposing every layer's hidden states."""

import keras
from keras import ops

from fastbert_tf.layers.bert_embeddings import BertEmbeddings
from fastbert_tf.layers.transformer_encoder import TRANSFORMER_ENCODERS


@keras.saving.register_keras_serializable(package="fastbert_tf")
class FastBertBackbone(keras.layers.Layer):
  """Embeddings plus a stack of post-LayerNorm transformer layers.

  Transformer layers are `layers.transformer_encoder.TransformerEncoder`
  blocks (keras-hub's arithmetic and weight names) named
  `transformer_layer_{i}` (0-based), like keras-hub's BertBackbone; unlike
  it, the activation defaults to exact-erf GELU as in Google/HF BERT. Named
  FastBertBackbone so that it is never confused with
  `keras_hub.models.BertBackbone`, whose presets checkpoints/ reads.

  The early-exit loop calls `embed()` and `transformer_layers[i]` one at a
  time; training calls the whole stack through `call()`.

  Args:
    vocabulary_size: int, number of token ids.
    num_layers: int, transformer layers (L).
    num_heads: int, attention heads per layer; divides `hidden_dim`.
    hidden_dim: int, width of every hidden state.
    intermediate_dim: int, width of the feed-forward block.
    max_sequence_length: int, learned positions.
    num_segments: int, segment (token type) ids; 3 for UER checkpoints.
    dropout: float, hidden and attention dropout.
    layer_norm_epsilon: float, 1e-12 for BERT checkpoints.
    activation: str, FFN activation: "gelu" (exact erf GELU, Keras'
      `gelu`), "gelu_approximate" (the tanh form keras-hub's BertBackbone
      uses, registered as `fastbert_tf>gelu_approximate`), or any name
      `keras.activations.get` knows.
    layer_norm_type: "bert" (Keras LayerNormalization, Google/HF/keras-hub
      checkpoints) or "uer" (UerLayerNormalization everywhere, for the
      FastBERT authors' UER checkpoints): picks the embeddings' LayerNorm
      and the transformer block class (TRANSFORMER_ENCODERS), whose
      `make_layer_norm` builds the blocks' LayerNorms.
    **kwargs: `name` ("backbone" by default: the weight paths of saved
      models and checkpoint readers start with it), `dtype` (a Keras dtype
      policy, passed to every sublayer) and the other `keras.layers.Layer`
      arguments.

  Examples:

  >>> backbone = FastBertBackbone(vocabulary_size=34, num_layers=2,
  ...                             num_heads=2, hidden_dim=16,
  ...                             intermediate_dim=32)
  >>> ids = np.array([[2, 7, 9, 3, 0]], "int32")
  >>> hidden = backbone(dict(token_ids=ids, segment_ids=np.zeros_like(ids),
  ...                        padding_mask=(ids > 0).astype("int32")))
  >>> len(hidden), hidden[-1].shape
  (2, TensorShape([1, 5, 16]))
  """

  def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim,
               intermediate_dim, max_sequence_length=512, num_segments=2,
               dropout=0.1, layer_norm_epsilon=1e-12, activation="gelu",
               layer_norm_type="bert", **kwargs):
    kwargs.setdefault("name", "backbone")
    super().__init__(**kwargs)
    if num_layers < 1:
      raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if hidden_dim % num_heads:
      raise ValueError(f"hidden_dim {hidden_dim} is not divisible by "
                       f"num_heads {num_heads}")
    self.vocabulary_size = vocabulary_size
    self.num_layers = num_layers
    self.num_heads = num_heads
    self.hidden_dim = hidden_dim
    self.intermediate_dim = intermediate_dim
    self.max_sequence_length = max_sequence_length
    self.num_segments = num_segments
    self.dropout = dropout
    self.layer_norm_epsilon = layer_norm_epsilon
    self.activation = activation
    self.layer_norm_type = layer_norm_type
    self.embeddings = BertEmbeddings(
        vocabulary_size, hidden_dim, max_sequence_length,
        num_segments=num_segments, dropout=dropout,
        layer_norm_epsilon=layer_norm_epsilon,
        layer_norm_type=layer_norm_type, dtype=self.dtype_policy,
        name="embeddings")
    if layer_norm_type not in TRANSFORMER_ENCODERS:
      raise ValueError(f"layer_norm_type {layer_norm_type!r}, expected one "
                       f"of {sorted(TRANSFORMER_ENCODERS)}")
    encoder = TRANSFORMER_ENCODERS[layer_norm_type]
    self.transformer_layers = [
        encoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads,
            dropout=dropout, activation=_activation(activation),
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy, name=f"transformer_layer_{i}")
        for i in range(num_layers)
    ]

  def build(self, token_ids_shape):
    # Keras' automatic build passes the shape of call()'s first argument:
    # here the inputs dict, so a symbolic or functional call gets a dict.
    if isinstance(token_ids_shape, dict):
      token_ids_shape = token_ids_shape["token_ids"]
    self.embeddings.build(token_ids_shape)
    hidden_shape = tuple(token_ids_shape) + (self.hidden_dim,)
    for layer in self.transformer_layers:
      layer.build(hidden_shape)
    self.built = True

  def embed(self, token_ids, segment_ids, training=None):
    """int32 [batch, seq] ids -> [batch, seq, hidden_dim] in the compute
    dtype (float32, or float16/bfloat16 under a mixed policy)."""
    return self.embeddings(token_ids, segment_ids, training=training)

  def call(self, inputs, training=None):
    """Runs every layer.

    Args:
      inputs: dict with `token_ids`, `segment_ids`, `padding_mask`, each int32
        [batch, seq] (`padding_mask` is 1 for real tokens).
      training: bool, enables dropout.

    Returns:
      list of num_layers [batch, seq, hidden_dim] tensors in the compute
      dtype, the output of each transformer layer in order.
    """
    mask = ops.cast(inputs["padding_mask"], "bool")
    x = self.embed(inputs["token_ids"], inputs["segment_ids"], training)
    outputs = []
    for layer in self.transformer_layers:
      x = layer(x, padding_mask=mask, training=training)
      outputs.append(x)
    return outputs

  def get_config(self):
    config = super().get_config()
    config.update(
        vocabulary_size=self.vocabulary_size, num_layers=self.num_layers,
        num_heads=self.num_heads, hidden_dim=self.hidden_dim,
        intermediate_dim=self.intermediate_dim,
        max_sequence_length=self.max_sequence_length,
        num_segments=self.num_segments, dropout=self.dropout,
        layer_norm_epsilon=self.layer_norm_epsilon,
        activation=self.activation, layer_norm_type=self.layer_norm_type)
    return config


@keras.saving.register_keras_serializable(package="fastbert_tf")
def gelu_approximate(x):
  """tanh-form GELU, keras-hub's BertBackbone activation.

  A named, registered function rather than a lambda, so that the
  transformer layers' configs serialize it by name (a lambda serializes as
  bytecode, which `.keras` loading refuses in safe mode).

  Args:
    x: float tensor, any shape.

  Returns:
    gelu(x, approximate=True), same shape and dtype.
  """
  return keras.activations.gelu(x, approximate=True)


def _activation(name):
  if name == "gelu":
    # Keras' gelu is the exact erf form by default and serializes as "gelu".
    return keras.activations.gelu
  if name == "gelu_approximate":
    return gelu_approximate
  return keras.activations.get(name)


# The class's name before the rename, kept only so that files written then
# still load: ".keras" files name it "fastbert_tf>BertBackbone", and Keras
# addresses a functional model's layers in the weights file by their class
# name ("layers/bert_backbone/..."), so the alias must also carry that name.
# Built with type() so that no module attribute named BertBackbone exists to
# be confused with keras_hub.models.BertBackbone.
keras.saving.register_keras_serializable(
    package="fastbert_tf", name="BertBackbone")(
        type("BertBackbone", (FastBertBackbone,), {
            "__doc__": "FastBertBackbone under its pre-rename name (loading "
                       "old files only).",
            "__module__": __name__}))
