"""Fine-tune, self-distill and evaluate FastBERT.

  python -m fastbert_tf.train --flagfile=configs/quickstart.flags

Publishes into --model_dir, once the run is complete: the model
(config.json, model.weights.h5, tokenizer.json with vocab.txt or
sentencepiece.model, labels.json), flags.txt (the resolved flags, itself a
valid flagfile), results.json and MANIFEST.json; TensorBoard logs go to
logs/. While it runs, its work is in --model_dir/.run/: run the same
command again after a kill and it resumes.

Bad input (data, flags, checkpoints, model directories) ends with one line,
`error: ...`, and exit status 1; --verbose shows the traceback.
"""

import dataclasses
import logging

from absl import app
from absl import flags

from fastbert_tf import errors
from fastbert_tf import flags as fastbert_flags
from fastbert_tf.training.config import TrainConfig

FLAGS = flags.FLAGS


def config_from_flags(flag_values=FLAGS):
  """Turns the parsed flags into a frozen TrainConfig."""
  kwargs = {f.name: flag_values[f.name].value
            for f in dataclasses.fields(TrainConfig)}
  try:
    kwargs["speeds"] = tuple(float(s) for s in kwargs["speeds"])
  except ValueError as e:
    raise app.UsageError(f"--speeds must be numbers: {e}") from e
  bad = [s for s in kwargs["speeds"] if not 0.0 <= s <= 1.0]
  if bad:
    raise app.UsageError(f"--speeds must lie in [0, 1], got {bad}")
  for name in ("labels", "class_weights"):
    kwargs[name] = tuple(kwargs[name] or ())
  if kwargs["reinit_students"] and kwargs["phase"] != "distill":
    raise app.UsageError("--reinit_students applies to --phase=distill only "
                         f"(got --phase={kwargs['phase']})")
  if kwargs["distill_data"] and kwargs["phase"] not in ("all", "distill"):
    raise app.UsageError("--distill_data is phase 2's; --phase="
                         f"{kwargs['phase']} has no phase 2")
  for name in ("batch_size", "eval_batch_size"):
    if kwargs[name] < 1:
      raise app.UsageError(f"--{name} must be >= 1, got {kwargs[name]}")
  return TrainConfig(**kwargs)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required")
  cfg = config_from_flags()
  flags_text = fastbert_flags.flags_to_flagfile(
      FLAGS, fastbert_flags.defined_flag_names())
  from fastbert_tf.training import runner  # pylint: disable=g-import-not-at-top
  errors.exit_on_user_error(runner.run_training, cfg, flags_text=flags_text)


def run():
  # TF's own INFO lines (checkpoint sharding timings...) drown the run's.
  logging.getLogger("tensorflow").setLevel(logging.WARNING)
  fastbert_flags.define_flags()
  errors.define_verbose_flag()
  app.run(main)


if __name__ == "__main__":
  run()
