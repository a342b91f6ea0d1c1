"""Token lengths of the datasets under a SentencePiece tokenizer, to choose
--max_seq_length and the train subsets (issue 13 item 6).

  python bench/token_lengths.py --model_dir=runs/book_review_e5 \
      --data=../shared/data/douban_book_review,../shared/data/weibo_senti_100k

Counts pieces the way the model sees them: the tokenizer's text prefix
(`query: `) and the XLM-R framing `<s> a </s>` (pairs `<s> a </s></s> b
</s>`), untruncated. Records, per dataset and split, the percentiles, the
share of texts longer than 64 and 128, and the mean (what a batch of
length-grouped texts costs).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import sentencepiece as spm
from absl import app
from absl import flags

from bench import common
from fastbert_tf.data import sources

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A model directory with "
                    "sentencepiece.model and tokenizer.json.")
flags.DEFINE_list("data", [], "TSV directories.")
flags.DEFINE_list("splits", ["train", "test"], "Splits to count.")
flags.DEFINE_integer("max_texts", 5000, "First N texts of each split.")
flags.DEFINE_string("output", "bench/results/token_lengths.json", "Records.")


def lengths(processor, prefix, data):
  """Pieces per example, framing included, untruncated: int array."""
  a = processor.encode([prefix + t for t in data.texts_a])
  out = np.array([len(x) + 2 for x in a])
  if data.texts_b is not None:
    b = processor.encode([prefix + t for t in data.texts_b])
    out += np.array([len(x) + 2 for x in b])
  return out


def main(argv):
  del argv
  with open(os.path.join(FLAGS.model_dir, "tokenizer.json"),
            encoding="utf-8") as f:
    prefix = json.load(f).get("text_prefix") or ""
  processor = spm.SentencePieceProcessor(
      model_file=os.path.join(FLAGS.model_dir, "sentencepiece.model"))
  records = []
  for data_dir in FLAGS.data:
    for split in FLAGS.splits:
      data = sources.load_split(data_dir, split).head(FLAGS.max_texts)
      n = lengths(processor, prefix, data)
      p50, p90, p99 = np.percentile(n, [50, 90, 99])
      row = dict(data=os.path.basename(os.path.normpath(data_dir)),
                 split=split, texts=len(n), mean=float(n.mean()),
                 p50=float(p50), p90=float(p90), p99=float(p99),
                 max=int(n.max()), over_64=float((n > 64).mean()),
                 over_128=float((n > 128).mean()))
      print(f"{row['data']:22s} {split:5s} n={row['texts']:5d} "
            f"mean {row['mean']:6.1f} p50 {p50:5.0f} p90 {p90:5.0f} "
            f"p99 {p99:5.0f} max {row['max']:5d} >64 {row['over_64']:.1%} "
            f">128 {row['over_128']:.1%}")
      records.append(common.record(benchmark="token_lengths",
                                   tokenizer=FLAGS.model_dir, **row))
  common.write_records(FLAGS.output, records)


if __name__ == "__main__":
  flags.mark_flag_as_required("model_dir")
  app.run(main)
