r"""Samples/s of the predict command's loop against evaluation, and of the
Beam pipeline (DirectRunner) against the predict command, on one file.

  python bench/predict_throughput.py --model_dir=runs/ag_news \
      --data=../shared/data/ag_news/test.tsv --max_samples=1000 \
      --speeds=0,0.5,0.8 [--beam] [--output=bench/results/predict_throughput.json]

In one process, per speed and side by side:
  evaluate  inference.evaluate.collect_outputs over a tf.data pipeline of the
            labelled split (what training's evaluation runs);
  predict   fastbert_tf.predictor.stream.classify_file: the file streamed
            line by line, parsed, classified by the Predictor, answers written as
            jsonl (the predict command minus start-up and model load);
  beam      (--beam, needs the beam extra) the whole Beam pipeline on the
            DirectRunner over the same file, model load and tracing
            included (its fixed cost is timed on a 10-line file too).
Every side is warmed up first (one traced call), so the numbers compare
the steady state; evaluate and predict alternate for --rounds rounds per
speed and the median round of each is kept.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained model directory.")
flags.DEFINE_string("data", None, "A labelled TSV (label<TAB>text_a).")
flags.DEFINE_integer("max_samples", 1000, "First N rows of --data.")
flags.DEFINE_list("speeds", ["0", "0.5", "0.8"], "Speeds.")
flags.DEFINE_integer("batch_size", 64, "Batch size of every side.")
flags.DEFINE_integer("rounds", 2, "Alternating evaluate/predict rounds per "
                     "speed; the median is kept.")
flags.DEFINE_boolean("beam", False, "Also time the Beam DirectRunner.")
flags.DEFINE_string("output", "bench/results/predict_throughput.json",
                    "Records file (appended).")
flags.mark_flags_as_required(["model_dir", "data"])


def _head(path, n, directory):
  out = os.path.join(directory, "input.tsv")
  with open(path, encoding="utf-8") as f, open(out, "w",
                                                encoding="utf-8") as g:
    for i, line in enumerate(f):
      if i > n:
        break
      g.write(line)
  return out


def _evaluate(model, encoder, data, speed, table, run):
  from fastbert_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import evaluate  # pylint: disable=g-import-not-at-top
  dataset = pipeline.make_dataset(data, encoder, FLAGS.batch_size)
  start = time.perf_counter()
  out = evaluate.collect_outputs(model, dataset, speed, table, run=run)
  seconds = time.perf_counter() - start
  return seconds, float(out["exit_layer"].mean())


def _predict(predictor, path, speed, directory):
  from fastbert_tf.predictor import stream  # pylint: disable=g-import-not-at-top
  with open(os.path.join(directory, "out.jsonl"), "w",
            encoding="utf-8") as out:
    start = time.perf_counter()
    totals, model_seconds = stream.classify_file(
        predictor, path, out, speed, FLAGS.batch_size, "tsv", "jsonl")
    seconds = time.perf_counter() - start
  return seconds, model_seconds, totals.exit_layers / totals.samples


def _beam(path, speed, directory):
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from fastbert_tf.beam import pipeline  # pylint: disable=g-import-not-at-top
  info = pipeline.describe_model(FLAGS.model_dir)
  start = time.perf_counter()
  # FnApiRunner: what DirectRunner runs offline, without first trying to
  # download the Prism runner.
  p = beam.Pipeline(runner="FnApiRunner")
  _ = p | pipeline.ClassifyFiles(path, os.path.join(directory, "beam"),
                                 FLAGS.model_dir, speed, info,
                                 batch_size=FLAGS.batch_size)
  result = p.run()
  result.wait_until_finish()
  seconds = time.perf_counter() - start
  # RunInference's own metrics: time inside run_inference (the model) and
  # the model load, so the steady state shows apart from start-up.
  model_s = load_s = batches = 0
  for d in result.metrics().query()["distributions"]:
    name, value = d.key.metric.name, d.committed
    if name.endswith("inference_batch_latency_micro_secs"):
      model_s, batches = value.sum / 1e6, value.count
    elif name.endswith("load_model_latency_milli_secs"):
      load_s = value.sum / 1e3
  return seconds, model_s, load_s, batches


def main(argv):
  del argv
  from fastbert_tf import tf_logs  # pylint: disable=g-import-not-at-top
  tf_logs.quiet_tensorflow_logs()
  from fastbert_tf import Predictor  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data import sources  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import early_exit  # pylint: disable=g-import-not-at-top
  directory = tempfile.mkdtemp()
  path = _head(FLAGS.data, FLAGS.max_samples, directory)
  data = sources.read_tsv(path)
  predictor = Predictor.load(FLAGS.model_dir, batch_size=FLAGS.batch_size)
  model, encoder = predictor.model, predictor.encoder
  from fastbert_tf.inference import flops as flops_lib  # pylint: disable=g-import-not-at-top
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  run = early_exit.compiled_early_exit(model, table)
  warm = list(data.texts_a[:FLAGS.batch_size])
  predictor.predict(warm, 0.5)
  ids = encoder(__import__("tensorflow").constant(warm))
  run(ids["token_ids"], ids["segment_ids"], ids["padding_mask"],
      __import__("tensorflow").constant(0.5))
  rows = []
  for speed in (float(s) for s in FLAGS.speeds):
    evals, preds = [], []
    for _ in range(FLAGS.rounds):
      evals.append(_evaluate(model, encoder, data, speed, table, run))
      preds.append(_predict(predictor, path, speed, directory))
    eval_s, eval_exit = sorted(evals)[len(evals) // 2]
    pred_s, model_s, pred_exit = sorted(preds)[len(preds) // 2]
    row = dict(speed=speed, samples=len(data),
               evaluate_samples_per_s=len(data) / eval_s,
               predict_samples_per_s=len(data) / pred_s,
               predict_model_share=model_s / pred_s,
               predict_vs_evaluate=eval_s / pred_s,
               mean_exit_layer=pred_exit, evaluate_mean_exit_layer=eval_exit)
    if FLAGS.beam:
      beam_s, beam_model_s, beam_load_s, batches = _beam(path, speed,
                                                         directory)
      row.update(beam_seconds=beam_s, beam_samples_per_s=len(data) / beam_s,
                 beam_vs_predict=pred_s / beam_s,
                 beam_model_seconds=beam_model_s,
                 beam_load_model_seconds=beam_load_s, beam_batches=batches,
                 beam_model_vs_predict_model=model_s / max(beam_model_s,
                                                           1e-9))
    rows.append(row)
    print(json.dumps(row), flush=True)
  if FLAGS.beam:
    small = os.path.join(directory, "small.tsv")
    with open(path, encoding="utf-8") as f:
      lines = f.readlines()[:11]
    with open(small, "w", encoding="utf-8") as f:
      f.writelines(lines)
    fixed = _beam(small, 0.5, directory)[0]
    print(json.dumps(dict(beam_fixed_seconds_10_lines=fixed)), flush=True)
    rows.append(dict(beam_fixed_seconds_10_lines=fixed))
  records = common.read_records(FLAGS.output)
  records.append(common.record(model_dir=FLAGS.model_dir, data=FLAGS.data,
                               batch_size=FLAGS.batch_size, rows=rows))
  common.write_records(FLAGS.output, records)


if __name__ == "__main__":
  app.run(main)
