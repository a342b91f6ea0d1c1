"""TFLite float32 vs dynamic-range quantized vs raw text: size and accuracy.

  python bench/tflite_quantization.py --model_dir=runs/quickstart --data=quickstart \
      --name=quickstart

Exports the model, converts `predict_ids` both ways and `predict_text` (the
tokenizer inside, tf-text custom ops; float32), runs all three with LiteRT on
the test split at a few speeds and records size, accuracy, mean exit layer
and how many samples change their answer or exit layer against the float32
ids model, in bench/results/tflite.json.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow_text  # pylint: disable=unused-import
from absl import app
from absl import flags

from bench import common
from fastbert_tf.data import pipeline
from fastbert_tf.data import sources
from fastbert_tf.export import exporter
from fastbert_tf.export import tflite
from fastbert_tf.models import saving

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model directory.")
flags.DEFINE_string("data", "quickstart", "Source of the test split.")
flags.DEFINE_string("name", None, "Model name in the records.")
flags.DEFINE_list("speeds", ["0", "0.5", "0.8"], "Speeds.")
flags.DEFINE_integer("max_samples", 0, "Test samples (0 = all).")
flags.DEFINE_string("output", "bench/results/tflite.json", "Records file.")
flags.mark_flags_as_required(["model_dir"])


def _run(runner, batches, speed):
  outs = [runner(speed=speed, **f) for f in batches]
  return (np.concatenate([o["label"] for o in outs]),
          np.concatenate([o["exit_layer"] for o in outs]))


def main(argv):
  del argv
  model, encoder = saving.load_model(FLAGS.model_dir)
  test = sources.load_split(FLAGS.data, "test")
  if FLAGS.max_samples:
    test = sources.TextDataset(test.texts_a[:FLAGS.max_samples],
                               test.texts_b and test.texts_b[:FLAGS.max_samples],
                               test.labels[:FLAGS.max_samples], test.source)
  batched = [({k: v.numpy() for k, v in f.items()}, l.numpy())
             for f, l in pipeline.make_dataset(test, encoder, 32)]
  labels = np.concatenate([l for _, l in batched])
  inputs = {q: [f for f, _ in batched] for q in tflite.QUANTIZATIONS}
  # The same batches as raw strings, for the model with the tokenizer inside.
  inputs["text"] = [
      dict(text=test.texts_a[i:i + 32],
           **({} if test.texts_b is None else dict(text_b=test.texts_b[i:i + 32])))
      for i in range(0, len(labels), 32)]
  with tempfile.TemporaryDirectory() as tmp:
    path = exporter.export_saved_model(model, encoder, tmp)
    contents = {q: tflite.convert(path, q) for q in tflite.QUANTIZATIONS}
    contents["text"] = tflite.convert(path, variant="text")
  runners = {q: tflite.LiteRTRunner(c) for q, c in contents.items()}
  records = []
  for speed in (float(s) for s in FLAGS.speeds):
    (f_label, f_exit), (q_label, q_exit), (t_label, t_exit) = (
        _run(runners[q], inputs[q], speed) for q in ("none", "dynamic", "text"))
    records.append(common.record(
        benchmark="tflite_quantization", model=FLAGS.name, speed=speed,
        num_samples=int(len(labels)),
        float32_bytes=len(contents["none"]),
        dynamic_bytes=len(contents["dynamic"]),
        float32_accuracy=float(np.mean(f_label == labels)),
        dynamic_accuracy=float(np.mean(q_label == labels)),
        float32_mean_exit_layer=float(np.mean(f_exit)),
        dynamic_mean_exit_layer=float(np.mean(q_exit)),
        changed_answers=int(np.sum(f_label != q_label)),
        changed_exit_layers=int(np.sum(f_exit != q_exit)),
        text_bytes=len(contents["text"]),
        text_accuracy=float(np.mean(t_label == labels)),
        text_changed_answers=int(np.sum(f_label != t_label)),
        text_changed_exit_layers=int(np.sum(f_exit != t_exit))))
  kept = [r for r in common.read_records(FLAGS.output)
          if r.get("model") != FLAGS.name]
  common.write_records(FLAGS.output, kept + records)
  for r in records:
    print(f"{r['model']} speed {r['speed']}: {r['float32_bytes']:,} -> "
          f"{r['dynamic_bytes']:,} bytes; accuracy "
          f"{100 * r['float32_accuracy']:.2f}% -> "
          f"{100 * r['dynamic_accuracy']:.2f}%; exit layer "
          f"{r['float32_mean_exit_layer']:.2f} -> "
          f"{r['dynamic_mean_exit_layer']:.2f}; {r['changed_answers']} answers"
          f" and {r['changed_exit_layers']} exits changed of {r['num_samples']}"
          f"; raw-text model {r['text_bytes']:,} bytes, "
          f"{100 * r['text_accuracy']:.2f}%, {r['text_changed_answers']} "
          f"answers and {r['text_changed_exit_layers']} exits differ from "
          "the float32 ids model")


if __name__ == "__main__":
  app.run(main)
