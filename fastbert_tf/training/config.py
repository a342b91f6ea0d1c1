"""TrainConfig: everything one training job needs, frozen; built from flags
by fastbert_tf/commands/train.py, passed down to the library (which never reads
flags)."""

import dataclasses
import math

from fastbert_tf.errors import ConfigError

# Fields that do not change what a run trains: a resumed run may differ in
# them (e.g. fewer GPUs after a preemption, other evaluation speeds).
NOT_IN_FINGERPRINT = frozenset({
    "model_dir", "overwrite", "export_base", "speeds", "exit_criterion",
    "top_k", "eval_batch_size", "checkpoint_every_steps",
    "distribution_strategy", "num_gpus", "tpu"})

# Fields added after runs had been started: fingerprinted only when set, so
# a run begun before they existed still resumes.
ADDED_LATER = frozenset({"distill_temperature", "calibrate_exits",
                         "tune_exits_epochs"})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training job (the flags of the same names; see commands/flags.py)."""
  model_dir: str
  # Data and labels.
  data: str = "quickstart"
  labels: tuple = ()
  num_classes: int = 0
  skip_bad_rows: bool = False
  max_bad_rows: str = "1%"
  class_weights: tuple = ()
  max_train_samples: int = 0
  max_eval_samples: int = 0
  # Tokenizer.
  vocab: str = ""
  vocab_size: int = 8000
  lowercase: bool = True
  max_seq_length: int = 128
  text_prefix: str | None = None
  prune_vocab: bool = False
  # Model.
  preset: str = ""
  config_json: str = ""
  pooling: str = ""
  init_checkpoint: str = ""
  freeze_token_embeddings: bool = False
  dtype_policy: str = "float32"
  # Phases.
  phase: str = "all"
  batch_size: int = 32
  eval_batch_size: int = 64
  length_group: int = 0
  pad_to_multiple_of: int = 0
  finetune_epochs: int = 3
  finetune_learning_rate: float = 2e-5
  distill_epochs: int = 5
  tune_exits_epochs: int = 1
  distill_learning_rate: float = 2e-4
  warmup_fraction: float = 0.1
  weight_decay: float = 0.01
  kl_direction: str = "teacher_student"
  student_reduction: str = "sum"
  teacher_dropout: bool = False
  reinit_students: bool = False
  distill_data: str = ""
  distill_temperature: float = 1.0
  calibrate_exits: bool = False
  seed: int = 0
  # Scale and safety.
  distribution_strategy: str = "one_device"
  num_gpus: int = 0
  tpu: str = ""
  jit_compile: bool = False
  checkpoint_every_steps: int = 0
  overwrite: bool = False
  # Evaluation and export.
  speeds: tuple = (0.0, 0.1, 0.5, 0.8)
  export_base: str = ""
  exit_criterion: str = "entropy"
  top_k: int = 2

  def __post_init__(self):
    check_numbers(self)

  def fingerprint(self):
    """{field: value} of what defines the trained model: a run in progress
    is resumed only by a job with the same fingerprint."""
    defaults = {f.name: f.default for f in dataclasses.fields(self)}
    return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()
            if k not in NOT_IN_FINGERPRINT and not (
                k in ADDED_LATER and v == defaults[k])}


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value


# The numeric fields' valid ranges: (least, most), both included. The upper
# ends are far beyond any real run and catch typos (10**12 epochs) before
# they allocate or run forever; see docs/testing.md, "numeric flags".
MAX_EPOCHS = 10_000
MAX_DISTILL_TEMPERATURE = 100.0
_INT_RANGES = {
    "batch_size": (1, None), "eval_batch_size": (1, None),
    "vocab_size": (6, None), "max_seq_length": (3, None),
    "max_train_samples": (0, None), "max_eval_samples": (0, None),
    "checkpoint_every_steps": (0, None), "length_group": (0, None),
    "pad_to_multiple_of": (0, None), "num_gpus": (0, None),
    "num_classes": (0, None), "seed": (0, 2**32 - 1), "top_k": (1, None),
    "finetune_epochs": (0, MAX_EPOCHS), "distill_epochs": (0, MAX_EPOCHS),
    "tune_exits_epochs": (1, MAX_EPOCHS)}
# A learned vocabulary holds data.vocab.RESERVED_TOKENS (5) and at least
# one token of the text (with none, the tokenizer cannot be built).
_WHY = {"max_seq_length": " ([CLS], [SEP] and one token)",
        "vocab_size": " (the 5 special tokens and one more)",
        "seed": " (NumPy's seed range)"}


def _refuse(name, value, what, expected):
  return ConfigError(f"--{name}={value}: {what}; expected {expected}")


def _check_int(name, value, least, most):
  if isinstance(value, bool) or not isinstance(value, int):
    raise _refuse(name, value, "not an integer", "an integer")
  if value < least or (most is not None and value > most):
    expected = (f"an integer >= {least:,}" if most is None else
                f"an integer in [{least:,}, {most:,}]")
    raise _refuse(name, value, "out of range", expected + _WHY.get(name, ""))


def _check_float(name, value, least, most, least_open=False):
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise _refuse(name, value, "not a number", "a number")
  if not math.isfinite(value):
    raise _refuse(name, value, "not a finite number",
                  f"a number in {'(' if least_open else '['}{least:g}, "
                  f"{most:g}]")
  if (value <= least if least_open else value < least) or value > most:
    raise _refuse(name, value, "out of range",
                  f"a number in {'(' if least_open else '['}{least:g}, "
                  f"{most:g}]")


def check_numbers(cfg):
  """Every numeric field of a TrainConfig in its range, before any work.

  What needs the data (--batch_size against the training examples,
  --num_classes against the labels, --max_seq_length against the position
  table, --top_k against the classes) is checked once that is read.

  Raises:
    ConfigError: `--flag=value: what is wrong; expected what`.
  """
  for name, (least, most) in _INT_RANGES.items():
    _check_int(name, getattr(cfg, name), least, most)
  if cfg.num_classes == 1:
    raise _refuse("num_classes", 1, "a classifier needs at least 2 classes",
                  "0 (from the data or --labels) or >= 2")
  runs = {"finetune_epochs": cfg.phase in ("all", "finetune", "joint"),
          "distill_epochs": cfg.phase in ("all", "distill")}
  for name, runs_phase in runs.items():
    if runs_phase and getattr(cfg, name) == 0:
      raise _refuse(name, 0, f"--phase={cfg.phase} runs this phase, and 0 "
                    "epochs would leave it untrained",
                    f"1 to {MAX_EPOCHS:,} epochs (or a --phase without it)")
  for name in ("finetune_learning_rate", "distill_learning_rate"):
    _check_float(name, getattr(cfg, name), 0.0, 1.0, least_open=True)
  _check_float("warmup_fraction", cfg.warmup_fraction, 0.0, 1.0)
  _check_float("weight_decay", cfg.weight_decay, 0.0, 1.0)
  _check_float("distill_temperature", cfg.distill_temperature, 0.0,
               MAX_DISTILL_TEMPERATURE, least_open=True)
  for speed in cfg.speeds:
    if not (isinstance(speed, (int, float)) and 0.0 <= speed <= 1.0):
      raise _refuse("speeds", ",".join(f"{s:g}" for s in cfg.speeds),
                    f"speed {speed:g} is outside [0, 1]",
                    "speeds in [0, 1]")
  if cfg.exit_criterion == "topk_entropy" and cfg.top_k < 2:
    raise _refuse("top_k", cfg.top_k, "--exit_criterion=topk_entropy "
                  "renormalizes over the k likeliest classes",
                  "an integer >= 2 (and at most the number of classes)")
