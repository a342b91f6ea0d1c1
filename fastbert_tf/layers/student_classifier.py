"""The FastBERT classifier that sits after every transformer layer (PAPER.md §1)."""

import keras
from keras import ops

POOLINGS = ("first", "mean", "max")


@keras.saving.register_keras_serializable(package="fastbert_tf")
class StudentClassifier(keras.layers.Layer):
  """Dense(hidden->128) -> tanh -> 2-head self-attention -> pool -> Dense -> tanh -> Dense.

  The same shape serves as every student and as the teacher. The attention
  block has Q/K/V/O projections and attention dropout, but (as in the
  authors' code) no residual, no LayerNorm and no feed-forward.

  With `pooling="first"` only the [CLS] position is used as a query: its
  output is identical to running full self-attention and slicing position 0,
  at a fraction of the cost. (FLOPs in the paper's unit still count every
  position; see `fastbert_tf.inference.flops`.)

  Args:
    num_classes: int, number of output logits.
    hidden_dim: int, classifier width (128 in the paper).
    num_heads: int, attention heads (2 in the paper).
    pooling: "first" ([CLS]), or "mean"/"max" over unmasked positions.
    dropout: float, attention dropout rate.
    temperature: float > 0, the logits are divided by it (1 = as trained;
      set by per-exit calibration, training/calibration.py, so that the
      exit criterion reads calibrated probabilities).
    **kwargs: `name`, `dtype` (a Keras dtype policy: every sublayer but
      `logits_dense`, which stays float32) and the other
      `keras.layers.Layer` arguments.

  Examples:

  >>> head = StudentClassifier(num_classes=3, hidden_dim=8, num_heads=2)
  >>> hidden = np.random.normal(size=(2, 5, 16)).astype("float32")
  >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
  >>> head(hidden, mask).shape     # float32 logits
  TensorShape([2, 3])
  """

  def __init__(self, num_classes, hidden_dim=128, num_heads=2, pooling="first",
               dropout=0.1, temperature=1.0, **kwargs):
    super().__init__(**kwargs)
    if not temperature > 0:
      raise ValueError(f"temperature must be > 0, got {temperature}")
    if pooling not in POOLINGS:
      raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if hidden_dim % num_heads:
      raise ValueError(f"classifier hidden_dim {hidden_dim} is not divisible "
                       f"by num_heads {num_heads}")
    self.num_classes = num_classes
    self.hidden_dim = hidden_dim
    self.num_heads = num_heads
    self.pooling = pooling
    self.dropout = dropout
    self.temperature = float(temperature)
    policy = self.dtype_policy
    self.input_dense = keras.layers.Dense(hidden_dim, activation="tanh",
                                          dtype=policy, name="input_dense")
    self.attention = keras.layers.MultiHeadAttention(
        num_heads=num_heads, key_dim=hidden_dim // num_heads, dropout=dropout,
        dtype=policy, name="self_attention")
    self.pooled_dense = keras.layers.Dense(hidden_dim, activation="tanh",
                                           dtype=policy, name="pooled_dense")
    # float32 whatever the policy: softmax, losses and the exit criteria
    # read these logits (Keras' mixed-precision guidance for outputs).
    self.logits_dense = keras.layers.Dense(num_classes, dtype="float32",
                                           name="logits_dense")

  def build(self, hidden_shape):
    self.input_dense.build(hidden_shape)
    small = tuple(hidden_shape[:-1]) + (self.hidden_dim,)
    self.attention.build(query_shape=small, value_shape=small)
    self.pooled_dense.build(small[:1] + small[2:])
    self.logits_dense.build(small[:1] + (self.hidden_dim,))
    self.built = True

  def call(self, hidden, padding_mask, training=None):
    """Classifies a batch of hidden states.

    Args:
      hidden: [batch, seq, backbone_hidden_dim], the compute dtype.
      padding_mask: int32 or bool [batch, seq]; 1/True marks real tokens.
      training: bool, enables attention dropout.

    Returns:
      float32 logits [batch, num_classes].
    """
    mask = ops.cast(padding_mask, "bool")
    x = self.input_dense(hidden)
    query = x[:, :1, :] if self.pooling == "first" else x
    # [batch, 1, seq]: every query may attend to every real key.
    attention_mask = ops.expand_dims(mask, axis=1)
    x = self.attention(query=query, value=x, key=x,
                       attention_mask=attention_mask, training=training)
    x = self._pool(x, mask)
    logits = self.logits_dense(self.pooled_dense(x))
    if self.temperature != 1.0:  # a Python constant: no op when uncalibrated
      logits = logits / self.temperature
    return logits

  def _pool(self, x, mask):
    if self.pooling == "first":
      return x[:, 0, :]
    weights = ops.expand_dims(ops.cast(mask, x.dtype), axis=-1)
    if self.pooling == "mean":
      # Average over real tokens (the authors' "mean" averaged features).
      total = ops.sum(x * weights, axis=1)
      return total / ops.maximum(ops.sum(weights, axis=1), 1.0)
    # float16's largest is 65504: -1e9 would be -inf, and -inf * 0 is NaN.
    very_negative = ops.cast(-6e4 if x.dtype == "float16" else -1e9, x.dtype)
    return ops.max(ops.where(weights > 0, x, very_negative), axis=1)

  def get_config(self):
    config = super().get_config()
    config.update(num_classes=self.num_classes, hidden_dim=self.hidden_dim,
                  num_heads=self.num_heads, pooling=self.pooling,
                  dropout=self.dropout, temperature=self.temperature)
    return config
