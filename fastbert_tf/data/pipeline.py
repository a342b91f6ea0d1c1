"""tf.data pipelines from in-memory TextDatasets to model batches."""

import numpy as np
import tensorflow as tf


def make_dataset(data, encoder, batch_size, shuffle=False, seed=0,
                 with_labels=True):
  """Batches, tokenizes in the graph, pads per batch.

  Args:
    data: fastbert_tf.data.sources.TextDataset.
    encoder: fastbert_tf.data.tokenizer.TextEncoder.
    batch_size: int.
    shuffle: bool, reshuffle every epoch (seeded, so runs repeat).
    seed: int.
    with_labels: bool; when False (or the data has no labels) elements are
      feature dicts only, as phase-2 distillation on unlabeled text needs.

  Returns:
    tf.data.Dataset of (features, labels) or features; features is a dict of
    int32 [batch, seq] `token_ids`, `segment_ids`, `padding_mask`, labels
    int32 [batch]. The last, smaller batch is kept: nothing is dropped.
  """
  columns = {"text_a": np.asarray(data.texts_a, dtype=object)}
  if data.texts_b is not None:
    columns["text_b"] = np.asarray(data.texts_b, dtype=object)
  with_labels = with_labels and data.labels is not None
  if with_labels:
    columns["label"] = np.asarray(data.labels, dtype=np.int32)
  ds = tf.data.Dataset.from_tensor_slices(columns)
  if shuffle:
    ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size)

  def encode(batch):
    features = encoder(batch["text_a"], batch.get("text_b"))
    return (features, batch["label"]) if with_labels else features

  return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)
