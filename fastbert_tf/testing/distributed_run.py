"""A few steps of each phase under a named strategy, for the distribution
tests: run as a script (each strategy needs its own process: logical CPU
devices and TF_CONFIG must be set before TensorFlow starts).

  python -m fastbert_tf.testing.distributed_run --strategy=mirrored \
      --output=/tmp/mirrored.npz [--logical_cpus=2] [--jit_compile]

Builds the tiny model with a fixed seed and dropout 0 (so every strategy
computes the same function), trains `--steps` steps of phase 1 then of
phase 2 on the same global batches through training.loop.PhaseLoop, and
saves the final weights (and the number of traced train-step programs).
"""

import argparse
import os
import sys


def _parse(argv):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--strategy", default="one_device")
  parser.add_argument("--output", required=True)
  parser.add_argument("--logical_cpus", type=int, default=1)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--jit_compile", action="store_true")
  parser.add_argument("--pad_to_multiple_of", type=int, default=0)
  parser.add_argument("--state_dir", default="")
  parser.add_argument("--varied_lengths", action="store_true",
                      help="texts of 1 to 29 letters, so batches come in "
                      "many lengths (the XLA test)")
  return parser.parse_args(argv)


def _batches(args, encoder, texts, labels, with_labels):
  """make_dataset(epoch) over fixed texts of many lengths."""
  from fastbert_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.rows import TextDataset  # pylint: disable=g-import-not-at-top
  data = TextDataset(texts, None, labels, "distributed_run")

  def make(epoch):
    return pipeline.epoch_dataset(
        data, encoder, args.batch_size, seed=0, epoch=epoch,
        with_labels=with_labels, drop_remainder=True,
        pad_to_multiple_of=args.pad_to_multiple_of)
  return make


def main(argv=None):
  args = _parse(argv if argv is not None else sys.argv[1:])
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if args.logical_cpus > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
  import keras  # pylint: disable=g-import-not-at-top
  from fastbert_tf import testing  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  from fastbert_tf.models import phases  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training import distribute  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training import loop  # pylint: disable=g-import-not-at-top

  devices = ([f"/cpu:{i}" for i in range(args.logical_cpus)]
             if args.strategy == "mirrored" else None)
  strategy = distribute.get_strategy(args.strategy, devices=devices)
  rows = testing.letter_task(args.batch_size * args.steps, seed=5)
  texts = tuple(t for _, t in rows)
  if args.varied_lengths:
    rng = np.random.default_rng(3)
    texts = tuple(" ".join("abcdefghijklmnopqrstuvwxyz"[: 1 + (i % 26)]
                           + "z" * int(rng.integers(0, 4)))
                  for i in range(len(texts)))
  labels = np.array([l for l, _ in rows], np.int32)
  encoder = TextEncoder(testing.TINY_VOCAB, 32)
  with strategy.scope():
    model = testing.tiny_model(seed=0, dropout=0.0, num_classes=2)
  initial = model.get_weights()
  traced = {}
  state_dir = args.state_dir or args.output + ".state"
  for phase in ("finetune", "distill"):
    with strategy.scope():
      model.phase_config = phases.PhaseConfig(phase)
      model.compile(keras.optimizers.SGD(0.5), jit_compile=args.jit_compile)
    config = loop.LoopConfig(phase, epochs=1, steps_per_epoch=args.steps,
                             jit_compile=args.jit_compile, log_every_steps=0)
    phase_loop = loop.PhaseLoop(
        model, strategy,
        _batches(args, encoder, texts, labels, phase != "distill"), None,
        os.path.join(state_dir, phase), config,
        is_chief=distribute.is_chief(strategy))
    phase_loop.run()
    traced[phase] = phase_loop.traced_shapes
  # Every process saves (each worker gets its own --output): the test
  # checks that all workers end with the same weights.
  np.savez(args.output, *model.get_weights(),
           traced_finetune=traced["finetune"],
           traced_distill=traced["distill"],
           replicas=strategy.num_replicas_in_sync,
           moved=max(float(np.abs(a - b).max())
                     for a, b in zip(initial, model.get_weights())))
  print(f"done: {strategy.num_replicas_in_sync} replicas, traced {traced}",
        flush=True)


if __name__ == "__main__":
  main()
