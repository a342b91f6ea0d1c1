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


# Integer flags and their smallest valid value.
_AT_LEAST = {"batch_size": 1, "eval_batch_size": 1, "finetune_epochs": 0,
             "distill_epochs": 0, "tune_exits_epochs": 1,
             "max_train_samples": 0,
             "max_eval_samples": 0, "checkpoint_every_steps": 0,
             "length_group": 0, "pad_to_multiple_of": 0, "num_gpus": 0,
             "num_classes": 0, "seed": 0, "top_k": 1}


def config_from_flags(flag_values=FLAGS):
  """Turns the parsed flags into a frozen TrainConfig.

  Raises:
    errors.ConfigError: a flag value out of range or flags that contradict
      each other, named.
  """
  kwargs = {f.name: flag_values[f.name].value
            for f in dataclasses.fields(TrainConfig)}
  try:
    kwargs["speeds"] = tuple(float(s) for s in kwargs["speeds"])
  except ValueError as e:
    raise errors.ConfigError(f"--speeds must be numbers: {e}") from None
  bad = [s for s in kwargs["speeds"] if not 0.0 <= s <= 1.0]
  if bad:
    raise errors.ConfigError(f"--speeds must lie in [0, 1], got {bad}")
  for name in ("labels", "class_weights"):
    kwargs[name] = tuple(kwargs[name] or ())
  if kwargs["reinit_students"] and kwargs["phase"] != "distill":
    raise errors.ConfigError("--reinit_students applies to --phase=distill "
                             f"only (got --phase={kwargs['phase']})")
  for name, unset in (("distill_data", ""), ("distill_temperature", 1.0)):
    if kwargs[name] != unset and kwargs["phase"] not in ("all", "distill"):
      raise errors.ConfigError(f"--{name} is phase 2's; --phase="
                               f"{kwargs['phase']} has no phase 2")
  if not kwargs["distill_temperature"] > 0:
    raise errors.ConfigError("--distill_temperature must be > 0, got "
                             f"{kwargs['distill_temperature']}")
  for name, least in _AT_LEAST.items():
    if kwargs[name] < least:
      raise errors.ConfigError(f"--{name} must be >= {least}, got "
                               f"{kwargs[name]}")
  if kwargs["max_seq_length"] < 3:
    raise errors.ConfigError("--max_seq_length must be >= 3 (the special "
                             f"tokens and one more), got "
                             f"{kwargs['max_seq_length']}")
  for name in ("finetune_learning_rate", "distill_learning_rate"):
    if not kwargs[name] > 0:
      raise errors.ConfigError(f"--{name} must be > 0, got {kwargs[name]}")
  if not 0.0 <= kwargs["warmup_fraction"] <= 1.0:
    raise errors.ConfigError("--warmup_fraction must lie in [0, 1], got "
                             f"{kwargs['warmup_fraction']}")
  if kwargs["weight_decay"] < 0:
    raise errors.ConfigError(f"--weight_decay must be >= 0, got "
                             f"{kwargs['weight_decay']}")
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
