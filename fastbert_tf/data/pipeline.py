"""tf.data pipelines from in-memory TextDatasets to model batches."""

import numpy as np
import tensorflow as tf


def make_dataset(data, encoder, batch_size, shuffle=False, seed=0,
                 with_labels=True, length_group=0, lengths=None):
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
  grouped = length_group > 1
  if grouped:
    columns["length"] = np.asarray(
        token_lengths(data, encoder) if lengths is None else lengths,
        np.int32)
  ds = tf.data.Dataset.from_tensor_slices(columns)
  if shuffle:
    ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
  if grouped:
    ds = ds.batch(batch_size * length_group).map(_sort_by_length).unbatch()
  ds = ds.batch(batch_size)
  if grouped and shuffle:
    ds = ds.shuffle(length_group, seed=seed + 1,
                    reshuffle_each_iteration=True)

  def encode(batch):
    features = encoder(batch["text_a"], batch.get("text_b"))
    return (features, batch["label"]) if with_labels else features

  return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)


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
