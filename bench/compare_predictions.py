"""Two exports' answers on a whole labelled split, text by text: accuracy,
speedup, and how many texts get another label or exit layer (issue 16:
the bfloat16 export against the float32 one).

  for m in saved_model_tensor_array saved_model_bf16; do for s in 0 0.5 0.8; do
    .venv/bin/python -m fastbert_tf.predict \
        --model_dir=runs/peers_ag_news/peers/$m/1 \
        --input=../shared/data/ag_news/test.tsv \
        --output=/tmp/pred_${m}_$s.jsonl --speed=$s --batch_size=32
  done; done
  .venv/bin/python bench/compare_predictions.py \
      --reference='/tmp/pred_saved_model_tensor_array_{speed}.jsonl' \
      --candidate='/tmp/pred_saved_model_bf16_{speed}.jsonl' \
      --data=../shared/data/ag_news/test.tsv --speeds=0,0.5,0.8 \
      --output=bench/results/bf16_export_accuracy.json

The predict command writes one JSON line per input line (its `line`
field, in order); the gold label is column `label` of the TSV.
"""

import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("reference", None, "Answers, {speed} in the path.")
flags.DEFINE_string("candidate", None, "Answers, {speed} in the path.")
flags.DEFINE_string("data", None, "The labelled TSV both answered.")
flags.DEFINE_list("speeds", ["0", "0.5", "0.8"], "Speeds (as in the paths).")
flags.DEFINE_string("output", "bench/results/bf16_export_accuracy.json",
                    "Records.")
flags.mark_flags_as_required(["reference", "candidate", "data"])


def read_answers(path):
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def compare(ref, cand, gold, speed=""):
  """Accuracy, mean FLOPs and exit layer of two answer lists (the predict
  command's JSON lines) on gold labels, and how many texts differ.

  Raises:
    ValueError: the lists differ in length or lines, or from gold's length.
  """
  if not len(ref) == len(cand) == len(gold):
    raise ValueError(f"speed {speed}: {len(ref)} / {len(cand)} answers for "
                     f"{len(gold)} labelled texts")
  if [a["line"] for a in ref] != [a["line"] for a in cand]:
    raise ValueError(f"speed {speed}: the answers are for other lines")
  row = {}
  for name, answers in (("reference", ref), ("candidate", cand)):
    row[f"{name}_accuracy"] = sum(
        a["label"] == g for a, g in zip(answers, gold)) / len(gold)
    row[f"{name}_mean_flops"] = sum(a["flops"] for a in answers) / len(gold)
    row[f"{name}_mean_exit_layer"] = sum(
        a["exit_layer"] for a in answers) / len(gold)
  row["labels_differ"] = sum(a["label"] != b["label"]
                             for a, b in zip(ref, cand))
  row["exit_layers_differ"] = sum(a["exit_layer"] != b["exit_layer"]
                                  for a, b in zip(ref, cand))
  row["texts"] = len(gold)
  return row


def main(argv):
  del argv
  with open(FLAGS.data, encoding="utf-8", newline="") as f:
    gold = [int(row["label"]) for row in csv.DictReader(
        f, delimiter="\t", quoting=csv.QUOTE_NONE)]
  rows = {}
  for speed in FLAGS.speeds:
    row = compare(read_answers(FLAGS.reference.format(speed=speed)),
                  read_answers(FLAGS.candidate.format(speed=speed)), gold,
                  speed)
    rows[speed] = row
    print(f"speed {speed}: accuracy {100 * row['reference_accuracy']:.2f}% vs "
          f"{100 * row['candidate_accuracy']:.2f}%, mean exit "
          f"{row['reference_mean_exit_layer']:.2f} vs "
          f"{row['candidate_mean_exit_layer']:.2f}; labels differ on "
          f"{row['labels_differ']}, exit layers on "
          f"{row['exit_layers_differ']} of {len(gold)} texts")
  common.write_records(FLAGS.output, common.read_records(FLAGS.output) + [
      common.record(benchmark="compare_predictions", reference=FLAGS.reference,
                    candidate=FLAGS.candidate, data=FLAGS.data, speeds=rows)])


if __name__ == "__main__":
  app.run(main)
