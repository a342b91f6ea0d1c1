"""tf.data pipelines from in-memory TextDatasets to model batches."""

import numpy as np
import tensorflow as tf


def make_dataset(data, encoder, batch_size, shuffle=False, seed=0,
                 with_labels=True, length_group=0, lengths=None,
                 drop_remainder=False, reshuffle_each_iteration=None,
                 sample_weights=None):
  """Batches, tokenizes in the graph, pads per batch.

  Args:
    data: fastbert_tf.data.sources.TextDataset.
    encoder: fastbert_tf.data.tokenizer.Encoder.
    batch_size: int.
    shuffle: bool, reshuffle every epoch (seeded, so runs repeat).
    seed: int.
    with_labels: bool; when False (or the data has no labels) elements are
      feature dicts only, as phase-2 distillation on unlabeled text needs.
    length_group: int; > 1 sorts each run of `length_group` batches (after
      the shuffle) by token count before batching, then shuffles the batch
      order again (when shuffling), so a batch holds texts of similar
      length and pads little. 0 or 1: plain batches.
    lengths: optional int [n] token counts of the examples (e.g. from
      `encoder.full_lengths`); computed here when grouping needs them.
    drop_remainder: bool, drop the last smaller batch (multi-replica
      strategies need equal global batches).
    reshuffle_each_iteration: bool; default: reshuffle when shuffling.
      epoch_dataset sets False and varies the seed per epoch instead.
    sample_weights: optional float32 [n] per-example loss weights (e.g.
      class weights); elements become (features, labels, weights).

  Returns:
    tf.data.Dataset of (features, labels) or features; features is a dict of
    int32 [batch, seq] `token_ids`, `segment_ids`, `padding_mask`, labels
    int32 [batch]. Every example is used once per epoch; the last batch of
    each group may be smaller: nothing is dropped.
  """
  columns = {"text_a": np.asarray(data.texts_a, dtype=object)}
  if data.texts_b is not None:
    columns["text_b"] = np.asarray(data.texts_b, dtype=object)
  with_labels = with_labels and data.labels is not None
  if with_labels:
    columns["label"] = np.asarray(data.labels, dtype=np.int32)
  weighted = with_labels and sample_weights is not None
  if weighted:
    columns["weight"] = np.asarray(sample_weights, dtype=np.float32)
  grouped = length_group > 1
  # A run of more batches than the data holds is the whole data: the same
  # order, without a buffer sized by the flag (10**12 crashed tf.data).
  length_group = min(length_group, max(1, -(-len(data) // batch_size)))
  if grouped:
    columns["length"] = np.asarray(
        token_lengths(data, encoder) if lengths is None else lengths,
        np.int32)
  reshuffle = True if reshuffle_each_iteration is None else (
      reshuffle_each_iteration)
  ds = tf.data.Dataset.from_tensor_slices(columns)
  if shuffle:
    ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=reshuffle)
  if grouped:
    ds = ds.batch(batch_size * length_group).map(_sort_by_length).unbatch()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if grouped and shuffle:
    ds = ds.shuffle(length_group, seed=seed + 1,
                    reshuffle_each_iteration=reshuffle)

  def encode(batch):
    features = encoder(batch["text_a"], batch.get("text_b"))
    if weighted:
      return features, batch["label"], batch["weight"]
    return (features, batch["label"]) if with_labels else features

  return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)


def epoch_dataset(data, encoder, batch_size, seed, epoch, with_labels=True,
                  length_group=0, lengths=None, drop_remainder=False,
                  pad_to_multiple_of=0, sample_weights=None):
  """One training epoch's batches, in an order that depends on (seed,
  epoch) only, so a resumed run sees exactly the batches an uninterrupted
  one would.

  Args:
    data, encoder, with_labels, length_group, lengths, sample_weights: as
      make_dataset.
    batch_size: int, the global batch.
    seed: int, the run's seed.
    epoch: int, 0-based.
    drop_remainder: bool; multi-replica strategies need equal batches (the
      dropped examples differ every epoch; `num_batches` counts them out).
    pad_to_multiple_of: int, see `pad_features`.

  Returns:
    tf.data.Dataset, `num_batches(...)` elements.
  """
  ds = make_dataset(data, encoder, batch_size, shuffle=True,
                    seed=_epoch_seed(seed, epoch), with_labels=with_labels,
                    length_group=length_group, lengths=lengths,
                    drop_remainder=drop_remainder,
                    reshuffle_each_iteration=False,
                    sample_weights=sample_weights)
  if pad_to_multiple_of:
    ds = ds.map(lambda *e: pad_features(e, pad_to_multiple_of, encoder))
  return ds


def _epoch_seed(seed, epoch):
  return int(seed) * 100_003 + int(epoch)


def num_batches(n, batch_size, drop_remainder=False):
  """Batches of an epoch of n examples."""
  return n // batch_size if drop_remainder else -(-n // batch_size)


def pad_features(element, multiple, encoder):
  """Pads a batch's sequence length up to a multiple of `multiple` (capped
  at the encoder's max_seq_length), so XLA sees a handful of shapes; with
  multiple >= max_seq_length every batch has the static max length (TPU).

  Args:
    element: (features,) or (features, labels[, weights]) as the dataset
      yields it; features holds int32 [batch, width] tensors.
    multiple: int > 0.
    encoder: the data.tokenizer.Encoder (pad id, max_seq_length).

  Returns:
    The element with features padded to [batch, target width].
  """
  features, rest = element[0], element[1:]
  cap = encoder.max_seq_length
  # The same target with any multiple >= cap, without int32 overflow in
  # the graph (--pad_to_multiple_of=10**12 failed the first batch).
  multiple = min(int(multiple), cap)
  width = tf.shape(features["token_ids"])[1]
  target = tf.minimum((width + multiple - 1) // multiple * multiple, cap)
  pad_values = dict(token_ids=encoder.special_ids()["pad"], segment_ids=0,
                    padding_mask=0)
  padded = {}
  for key, value in features.items():
    padded[key] = tf.pad(value, [[0, 0], [0, target - width]],
                         constant_values=pad_values[key])
    if multiple >= cap:
      padded[key].set_shape([None, cap])
  return (padded,) + tuple(rest) if rest else padded


def _sort_by_length(chunk):
  order = tf.argsort(chunk["length"], stable=True)
  return {k: tf.gather(v, order) for k, v in chunk.items()}


def token_lengths(data, encoder, chunk=2048):
  """int32 numpy [n]: tokens each example needs before truncation,
  special tokens included (`encoder.full_lengths`)."""
  parts = []
  for start in range(0, len(data), chunk):
    a = tf.constant(data.texts_a[start:start + chunk])
    b = (None if data.texts_b is None
         else tf.constant(data.texts_b[start:start + chunk]))
    parts.append(encoder.full_lengths(a, b).numpy())
  return np.concatenate(parts) if parts else np.zeros([0], np.int32)
