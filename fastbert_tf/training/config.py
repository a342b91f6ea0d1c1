"""TrainConfig: everything one training job needs, frozen; built from flags
by fastbert_tf/commands/train.py, passed down to the library (which never reads
flags)."""

import dataclasses

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

  def fingerprint(self):
    """{field: value} of what defines the trained model: a run in progress
    is resumed only by a job with the same fingerprint."""
    defaults = {f.name: f.default for f in dataclasses.fields(self)}
    return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()
            if k not in NOT_IN_FINGERPRINT and not (
                k in ADDED_LATER and v == defaults[k])}


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value
