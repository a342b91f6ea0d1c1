"""Training throughput: FastBERT phase 1 and phase 2 vs keras-hub's
BertTextClassifier.fit on the same shapes, measured side by side.

  python bench/train_throughput.py --preset=minilm_l6 --max_seq_length=128

Rounds alternate between the three contenders so that machine noise hits all
of them alike; the median of the rounds is reported.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # pylint: disable=g-import-not-at-top
import keras_hub
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from bench import common
from fastbert_tf.models import phases
from fastbert_tf.models import presets
from fastbert_tf.models.fastbert_classifier import FastBertClassifier
from fastbert_tf.training import optimization

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "minilm_l6", "Architecture.")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length (all tokens real).")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("steps", 8, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("vocabulary_size", 30522, "Vocabulary size.")
flags.DEFINE_string("output", "bench/results/train_throughput.json", "Output.")


def _batch():
  rng = np.random.default_rng(0)
  shape = (FLAGS.batch_size, FLAGS.max_seq_length)
  ids = rng.integers(5, FLAGS.vocabulary_size, size=shape).astype("int32")
  features = dict(token_ids=ids, segment_ids=np.zeros_like(ids),
                  padding_mask=np.ones_like(ids))
  labels = rng.integers(0, 2, size=shape[0]).astype("int32")
  return features, labels


def _fastbert(phase):
  arch = presets.get_preset(FLAGS.preset)
  arch.update(vocabulary_size=FLAGS.vocabulary_size, num_classes=2)
  model = FastBertClassifier(**arch)
  model.build()
  model.phase_config = phases.PhaseConfig(phase)
  model.compile(optimization.make_optimizer(2e-5, 1000))
  return model


def _keras_hub():
  arch = presets.get_preset(FLAGS.preset)
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=FLAGS.vocabulary_size, num_layers=arch["num_layers"],
      num_heads=arch["num_heads"], hidden_dim=arch["hidden_dim"],
      intermediate_dim=arch["intermediate_dim"],
      max_sequence_length=arch["max_sequence_length"])
  model = keras_hub.models.BertTextClassifier(backbone, num_classes=2,
                                              preprocessor=None)
  model.compile(optimizer=optimization.make_optimizer(2e-5, 1000),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  return model


def _time_fit(model, data, labels_needed):
  features, labels = data
  ds = (tf.data.Dataset.from_tensors((features, labels)) if labels_needed
        else tf.data.Dataset.from_tensors(features))
  model.fit(ds.repeat(2), verbose=0)  # trace + warm up
  start = time.perf_counter()
  model.fit(ds.repeat(FLAGS.steps), verbose=0)
  return FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  data = _batch()
  contenders = {
      "fastbert_phase1_finetune": (_fastbert("finetune"), True),
      "fastbert_phase2_distill": (_fastbert("distill"), False),
      "keras_hub_BertTextClassifier": (_keras_hub(), True),
  }
  rates = {name: [] for name in contenders}
  for _ in range(FLAGS.rounds):
    for name, (model, labels_needed) in contenders.items():
      rates[name].append(_time_fit(model, data, labels_needed))
  median = {name: float(np.median(r)) for name, r in rates.items()}
  base = median["keras_hub_BertTextClassifier"]
  records = [common.record(
      benchmark="train_throughput", contender=name, preset=FLAGS.preset,
      max_seq_length=FLAGS.max_seq_length, batch_size=FLAGS.batch_size,
      samples_per_second=median[name], rounds=[float(x) for x in rates[name]],
      ratio_to_keras_hub=median[name] / base) for name in contenders]
  common.write_records(FLAGS.output, records)
  for r in records:
    print(f"{r['contender']:<30} {r['samples_per_second']:8.2f} samples/s "
          f"({r['ratio_to_keras_hub']:.2f}x keras-hub)")


if __name__ == "__main__":
  app.run(main)
