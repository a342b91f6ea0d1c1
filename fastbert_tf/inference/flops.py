"""FLOPs per sample in the FastBERT paper's unit (PAPER.md §4).

The unit: every linear layer at batch 1 with the sample padded to the full
sequence length; attention score matmuls, softmax, LayerNorm and activations
are not counted. A dense layer mapping `d_in -> d_out` on `n` positions costs
`n * d_out * (2 * d_in - 1)` FLOPs (d_in multiplies and d_in - 1 adds per
output). With this exact count BERT-base at seq 128 gives 1811.1M per layer,
46.1M per classifier and 21,779M in total, the paper's 1809.9M / 46.1M /
21,785M within 0.07%; the 2-FLOPs-per-MAC approximation gives 1811.9M per
layer, 0.11% off the paper.
"""

import dataclasses
import numbers

from fastbert_tf.errors import ConfigError

from fastbert_tf.models import architecture


def dense_flops(positions, d_in, d_out):
  """FLOPs of y = x W (no bias) applied at `positions` positions."""
  return positions * d_out * (2 * d_in - 1)


def transformer_layer_flops(seq_len, hidden_dim, intermediate_dim):
  """Q, K, V, O projections plus the two FFN matmuls of one layer."""
  attention = 4 * dense_flops(seq_len, hidden_dim, hidden_dim)
  ffn = (dense_flops(seq_len, hidden_dim, intermediate_dim) +
         dense_flops(seq_len, intermediate_dim, hidden_dim))
  return attention + ffn


def classifier_flops(seq_len, hidden_dim, classifier_hidden_dim, num_classes):
  """One FastBERT classifier, every position counted as the paper does."""
  c = classifier_hidden_dim
  return (dense_flops(seq_len, hidden_dim, c) +
          4 * dense_flops(seq_len, c, c) +      # self-attention Q/K/V/O
          dense_flops(seq_len, c, c) +          # FC 128 -> 128
          dense_flops(seq_len, c, num_classes))  # FC 128 -> N


@dataclasses.dataclass(frozen=True)
class FlopsTable:
  """Per-sample FLOPs of a FastBERT architecture at one sequence length.

  Attributes:
    layer: FLOPs of one transformer layer.
    classifier: FLOPs of one classifier.
    num_layers: L.
  """
  layer: int
  classifier: int
  num_layers: int

  @property
  def baseline(self):
    """The full model answering with the teacher alone (plain BERT + head)."""
    return self.num_layers * self.layer + self.classifier

  def at_exit(self, exit_layer):
    """FLOPs of a sample leaving after `exit_layer` (1-based): it paid for
    every layer and every classifier up to and including that one. (At
    speed 0 the early-exit loop skips the students, so a sample costs
    `baseline` instead.)"""
    if not 1 <= exit_layer <= self.num_layers:
      raise ValueError(f"exit_layer must be in [1, {self.num_layers}], "
                       f"got {exit_layer}")
    return exit_layer * (self.layer + self.classifier)

  def cumulative(self):
    """[at_exit(1), ..., at_exit(L)] as a list of ints."""
    return [self.at_exit(k) for k in range(1, self.num_layers + 1)]

  @property
  def max_speedup(self):
    return self.baseline / self.at_exit(1)

  def speedup(self, mean_flops):
    return self.baseline / mean_flops


def check_sizes(config, seq_len=None):
  """The lengths and classes a FLOPs table (and a model) can have.

  Raises:
    ConfigError: `--max_seq_length=N: ...` beyond the position table or
      below 3 ([CLS], [SEP] and one token); `--num_classes=K: ...` below 2.
  """
  most = config.get("max_sequence_length")
  if seq_len is not None and (
      isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral)
      or seq_len < 3 or (most is not None and seq_len > most)):
    raise ConfigError(
        f"--max_seq_length={seq_len}: not a length this architecture reads; "
        f"expected an integer in [3, {most}] ([CLS], [SEP] and one token, "
        "up to its position table)")
  classes = config.get("num_classes", 2)
  if isinstance(classes, bool) or not isinstance(
      classes, numbers.Integral) or classes < 2:
    raise ConfigError(f"--num_classes={classes}: a classifier needs at "
                      "least 2 classes; expected an integer >= 2")


def flops_table(config, seq_len=None):
  """FlopsTable for a FastBertClassifier config.

  Args:
    config: `model.get_config()` (the backbone nested), or the flat
      architecture dict (models.architecture) with num_layers, hidden_dim,
      intermediate_dim, num_classes, classifier_hidden_dim (default 128),
      max_sequence_length.
    seq_len: int, padded length; defaults to the config's max_sequence_length.

  Raises:
    ConfigError: a seq_len outside [3, max_sequence_length] or fewer than
      2 classes (`--max_seq_length=...`, `--num_classes=...`).
  """
  config = architecture.flatten(config)
  check_sizes(config, seq_len)
  seq_len = config["max_sequence_length"] if seq_len is None else seq_len
  return FlopsTable(
      layer=transformer_layer_flops(seq_len, config["hidden_dim"],
                                    config["intermediate_dim"]),
      classifier=classifier_flops(seq_len, config["hidden_dim"],
                                  config.get("classifier_hidden_dim", 128),
                                  config["num_classes"]),
      num_layers=config["num_layers"])
