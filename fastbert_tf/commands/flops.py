"""Print FLOPs per sample in the FastBERT paper's unit.

  fastbert-flops --preset=bert_base --max_seq_length=128 --num_classes=2
  (or python -m fastbert_tf.flops)
"""

import json

from absl import app
from absl import flags

from fastbert_tf.commands import common
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.models import presets

FLAGS = flags.FLAGS


def define_flags():
  """Every flag of the command."""
  flags.DEFINE_string("preset", "bert_base", "Named architecture.")
  flags.DEFINE_string("config_json", "", "Architecture json (overrides --preset).")
  flags.DEFINE_integer("max_seq_length", 128, "Padded sequence length.")
  flags.DEFINE_integer("num_classes", 2, "Number of classes.")
  flags.DEFINE_boolean("json", False, "Print one json object instead of text.")


def report(config, seq_len):
  """The FLOPs figures of an architecture as a dict (FLOPs, not MFLOPs)."""
  table = flops_lib.flops_table(config, seq_len)
  return dict(max_seq_length=seq_len, num_layers=table.num_layers,
              flops_per_layer=table.layer, flops_per_classifier=table.classifier,
              baseline_flops=table.baseline,
              flops_by_exit_layer=table.cumulative(),
              max_speedup=table.max_speedup)


def main(argv):
  common.exit_on_user_error(_main, argv)


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = (presets.load_config_json(FLAGS.config_json) if FLAGS.config_json
            else presets.get_preset(FLAGS.preset))
  config["num_classes"] = FLAGS.num_classes
  r = report(config, FLAGS.max_seq_length)
  if FLAGS.json:
    print(json.dumps(r, indent=2))
    return
  print(f"seq {r['max_seq_length']}, {r['num_layers']} layers, "
        f"{FLAGS.num_classes} classes (FLOPs per sample, paper unit)")
  print(f"  per transformer layer: {r['flops_per_layer'] / 1e6:>10,.1f}M")
  print(f"  per classifier:        {r['flops_per_classifier'] / 1e6:>10,.1f}M")
  print(f"  full model (baseline): {r['baseline_flops'] / 1e6:>10,.1f}M")
  for k, f in enumerate(r["flops_by_exit_layer"], 1):
    print(f"  exit after layer {k:>2}:   {f / 1e6:>10,.1f}M")
  print(f"  largest speedup:       {r['max_speedup']:>10.2f}x")


def run():
  """fastbert-flops (and `python -m fastbert_tf.flops`)."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
