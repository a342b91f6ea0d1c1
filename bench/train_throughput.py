"""Training throughput: FastBERT phase 1 and phase 2 vs keras-hub's
BertTextClassifier.fit on the same shapes, under each dtype policy, with
and without XLA, measured side by side.

  python bench/train_throughput.py --preset=minilm_l6 --max_seq_length=128 \
      --policies=float32,mixed_bfloat16 --jit_compile=false,true

Every contender trains through Keras' own step machinery (`fit`: a
tf.function over strategy.run(train_step), XLA when compiled so), the same
machinery training.loop.PhaseLoop drives. Rounds alternate between the
contenders so that machine noise hits all of them alike; the median of the
rounds is reported, with each contender's ratio to keras-hub's default
(float32, no XLA) and to keras-hub under the same policy and XLA setting.
"""

import itertools
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
flags.DEFINE_integer("steps", 6, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("vocabulary_size", 30522, "Vocabulary size.")
flags.DEFINE_list("policies", ["float32", "mixed_bfloat16"],
                  "Keras dtype policies to measure.")
flags.DEFINE_list("jit_compile", ["false", "true"], "XLA settings to measure.")
flags.DEFINE_list("contenders", ["phase1", "phase2", "keras_hub"],
                  "Which models to measure.")
flags.DEFINE_string("output", "bench/results/train_throughput.json", "Output.")


def _batch():
  rng = np.random.default_rng(0)
  shape = (FLAGS.batch_size, FLAGS.max_seq_length)
  ids = rng.integers(5, FLAGS.vocabulary_size, size=shape).astype("int32")
  features = dict(token_ids=ids, segment_ids=np.zeros_like(ids),
                  padding_mask=np.ones_like(ids))
  labels = rng.integers(0, 2, size=shape[0]).astype("int32")
  return features, labels


def _fastbert(phase, policy, jit):
  arch = presets.get_preset(FLAGS.preset)
  arch.update(vocabulary_size=FLAGS.vocabulary_size, num_classes=2,
              dtype=policy)
  model = FastBertClassifier.from_architecture(**arch)
  model.build()
  model.phase_config = phases.PhaseConfig(phase)
  model.compile(optimization.make_optimizer(2e-5, 1000), jit_compile=jit)
  return model


def _keras_hub(policy, jit):
  arch = presets.get_preset(FLAGS.preset)
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=FLAGS.vocabulary_size, num_layers=arch["num_layers"],
      num_heads=arch["num_heads"], hidden_dim=arch["hidden_dim"],
      intermediate_dim=arch["intermediate_dim"],
      max_sequence_length=arch["max_sequence_length"], dtype=policy)
  model = keras_hub.models.BertTextClassifier(backbone, num_classes=2,
                                              preprocessor=None, dtype=policy)
  model.compile(optimizer=optimization.make_optimizer(2e-5, 1000),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True), jit_compile=jit)
  return model


def _dataset(data, labels_needed):
  features, labels = data
  if not labels_needed:
    return tf.data.Dataset.from_tensors(features)
  return tf.data.Dataset.from_tensors((features, labels))


def _keras_hub_dataset(data):
  features, labels = data
  inputs = dict(token_ids=features["token_ids"],
                segment_ids=features["segment_ids"],
                padding_mask=features["padding_mask"])
  return tf.data.Dataset.from_tensors((inputs, labels))


def _time_fit(model, ds):
  model.fit(ds.repeat(2), verbose=0)  # trace (and XLA-compile) + warm up
  start = time.perf_counter()
  model.fit(ds.repeat(FLAGS.steps), verbose=0)
  return FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)


def _contenders(data):
  out = {}
  for policy, jit_text in itertools.product(FLAGS.policies,
                                            FLAGS.jit_compile):
    jit = jit_text.lower() == "true"
    tag = f"{policy}{'+xla' if jit else ''}"
    if "phase1" in FLAGS.contenders:
      out[f"fastbert_phase1[{tag}]"] = (
          _fastbert("finetune", policy, jit), _dataset(data, True),
          policy, jit)
    if "phase2" in FLAGS.contenders:
      out[f"fastbert_phase2[{tag}]"] = (
          _fastbert("distill", policy, jit), _dataset(data, False),
          policy, jit)
    if "keras_hub" in FLAGS.contenders:
      out[f"keras_hub_fit[{tag}]"] = (_keras_hub(policy, jit),
                                      _keras_hub_dataset(data), policy, jit)
  return out


def main(argv):
  del argv
  contenders = _contenders(_batch())
  rates = {name: [] for name in contenders}
  for _ in range(FLAGS.rounds):
    for name, (model, ds, _, _) in contenders.items():
      rates[name].append(_time_fit(model, ds))
  median = {name: float(np.median(r)) for name, r in rates.items()}
  default = median.get("keras_hub_fit[float32]")
  records = []
  for name, (_, _, policy, jit) in contenders.items():
    tag = f"{policy}{'+xla' if jit else ''}"
    same = median.get(f"keras_hub_fit[{tag}]")
    records.append(common.record(
        benchmark="train_throughput", contender=name, preset=FLAGS.preset,
        dtype_policy=policy, jit_compile=jit,
        max_seq_length=FLAGS.max_seq_length, batch_size=FLAGS.batch_size,
        samples_per_second=median[name],
        rounds=[float(x) for x in rates[name]],
        ratio_to_keras_hub_float32=median[name] / default if default else None,
        ratio_to_keras_hub_same_settings=median[name] / same if same else None))
  common.write_records(FLAGS.output, records)
  for r in records:
    ratio = r["ratio_to_keras_hub_same_settings"]
    print(f"{r['contender']:<40} {r['samples_per_second']:8.2f} samples/s"
          + (f"  ({ratio:.2f}x keras-hub, same settings)" if ratio else ""))


if __name__ == "__main__":
  app.run(main)
