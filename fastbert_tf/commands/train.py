"""Fine-tune, self-distill and evaluate FastBERT.

  fastbert-train --flagfile=configs/quickstart.flags
  python -m fastbert_tf.train --flagfile=configs/quickstart.flags   (the same)

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

from absl import flags

from fastbert_tf import errors
from fastbert_tf.commands import common
from fastbert_tf.commands import flags as fastbert_flags
from fastbert_tf.training.config import TrainConfig

FLAGS = flags.FLAGS


def config_from_flags(flag_values=FLAGS):
  """Turns the parsed flags into a frozen TrainConfig.

  Raises:
    errors.ConfigError: a flag value out of range (TrainConfig checks the
      numbers: training/config.py) or flags that contradict each other,
      named.
  """
  kwargs = {f.name: flag_values[f.name].value
            for f in dataclasses.fields(TrainConfig)}
  try:
    kwargs["speeds"] = tuple(float(s) for s in kwargs["speeds"])
  except ValueError as e:
    raise errors.ConfigError(f"--speeds={','.join(kwargs['speeds'])}: not "
                             f"numbers ({e}); expected speeds in [0, 1]"
                             ) from None
  for name in ("labels", "class_weights"):
    kwargs[name] = tuple(kwargs[name] or ())
  if kwargs["reinit_students"] and kwargs["phase"] != "distill":
    raise errors.ConfigError("--reinit_students applies to --phase=distill "
                             f"only (got --phase={kwargs['phase']})")
  for name, unset in (("distill_data", ""), ("distill_temperature", 1.0)):
    if kwargs[name] != unset and kwargs["phase"] not in ("all", "distill"):
      raise errors.ConfigError(f"--{name} is phase 2's; --phase="
                               f"{kwargs['phase']} has no phase 2")
  return TrainConfig(**kwargs)


def _main(argv):
  if len(argv) > 1:
    raise errors.ConfigError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise errors.ConfigError("--model_dir is required")
  cfg = config_from_flags()
  flags_text = fastbert_flags.flags_to_flagfile(
      FLAGS, fastbert_flags.defined_flag_names())
  from fastbert_tf.training import runner  # pylint: disable=g-import-not-at-top
  runner.run_training(cfg, flags_text=flags_text)


def main(argv):
  common.exit_on_user_error(_main, argv)


def define_flags():
  """Every flag of the command."""
  fastbert_flags.define_flags()
  common.define_verbose_flag()


def run():
  """fastbert-train (and `python -m fastbert_tf.train`)."""
  # TF's own INFO lines (checkpoint sharding timings...) drown the run's.
  logging.getLogger("tensorflow").setLevel(logging.WARNING)
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
