"""Fine-tune, self-distill and evaluate FastBERT.

  python -m fastbert_tf.train --flagfile=configs/quickstart.flags

Writes into --model_dir: the model (config.json, model.weights.h5, vocab.txt,
tokenizer.json), flags.txt (the resolved flags, itself a valid flagfile),
results.json and TensorBoard logs under logs/.
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags

from fastbert_tf import flags as fastbert_flags

FLAGS = flags.FLAGS


def config_from_flags(flag_values=FLAGS):
  """Turns the parsed flags into a frozen TrainConfig."""
  from fastbert_tf.training.runner import TrainConfig  # TF import is slow.
  kwargs = {f.name: flag_values[f.name].value
            for f in dataclasses.fields(TrainConfig)}
  try:
    kwargs["speeds"] = tuple(float(s) for s in kwargs["speeds"])
  except ValueError as e:
    raise app.UsageError(f"--speeds must be numbers: {e}") from e
  bad = [s for s in kwargs["speeds"] if not 0.0 <= s <= 1.0]
  if bad:
    raise app.UsageError(f"--speeds must lie in [0, 1], got {bad}")
  if kwargs["reinit_students"] and kwargs["phase"] != "distill":
    raise app.UsageError("--reinit_students applies to --phase=distill only "
                         f"(got --phase={kwargs['phase']})")
  if kwargs["distill_data"] and kwargs["phase"] not in ("all", "distill"):
    raise app.UsageError("--distill_data is phase 2's; --phase="
                         f"{kwargs['phase']} has no phase 2")
  return TrainConfig(**kwargs)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required")
  cfg = config_from_flags()
  os.makedirs(cfg.model_dir, exist_ok=True)
  # A distill-only run must not overwrite the record of how the model in
  # model_dir was built: it writes flags_distill.txt beside flags.txt.
  name = "flags_distill.txt" if cfg.phase == "distill" else "flags.txt"
  with open(os.path.join(cfg.model_dir, name), "w") as f:
    f.write(fastbert_flags.flags_to_flagfile(
        FLAGS, fastbert_flags.defined_flag_names()))
  from fastbert_tf.data import sources  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training import runner  # pylint: disable=g-import-not-at-top
  try:
    runner.run_training(cfg)
  except (sources.DataError, FileNotFoundError) as e:
    # Bad input is the user's to fix: say what and where, no traceback.
    sys.exit(f"error: {e}")


def run():
  fastbert_flags.define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
