"""What a run records beside its model: results.json (test accuracy, exit
layers and FLOPs per speed, histories, truncation, skipped rows) and the
flags it ran with, written into the staging directory so they are
published with the model they describe."""

import dataclasses
import json
import os

from absl import logging

from fastbert_tf.inference import criteria
from fastbert_tf.inference import evaluate
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.reporting import model_card
from fastbert_tf.training import inputs

RESULTS_FILE = "results.json"
FLAGS_FILE = "flags.txt"
# A --phase=distill run must not overwrite the record of how the model was
# built: its flags go beside flags.txt.
DISTILL_FLAGS_FILE = "flags_distill.txt"
CALIBRATE_FLAGS_FILE = "flags_calibrate.txt"
TUNE_EXITS_FLAGS_FILE = "flags_tune_exits.txt"


def evaluate_and_stage(model, encoder, data, cfg, staged, histories,
                       train_seconds, truncated=None, skipped=None,
                       flags_text=None):
  """Evaluates the test split at every speed; writes results.json and the
  flags file into `staged`; returns the results dict."""
  table = flops_lib.flops_table(model.get_config(), encoder.max_seq_length)
  test = data.splits["test"]
  test_ds = inputs.eval_batches(cfg, test, encoder)
  criterion = criteria.ExitCriterion(cfg.exit_criterion, top_k=cfg.top_k)
  records = evaluate.evaluate_speeds(model, test_ds, cfg.speeds, table,
                                     criterion)
  print(evaluate.format_table(records, table.baseline), flush=True)
  results = dict(speeds=records, baseline_flops=table.baseline,
                 flops_per_layer=table.layer,
                 flops_per_classifier=table.classifier,
                 num_layers=model.num_layers, num_classes=model.num_classes,
                 labels=data.label_set.to_json(),
                 exit_criterion=dataclasses.asdict(criterion),
                 test_source=test.source, num_test_samples=len(test),
                 train_seconds=train_seconds, history=histories,
                 truncated_examples=truncated or {},
                 skipped_rows=skipped or {},
                 max_seq_length=encoder.max_seq_length,
                 dtype_policy=model.dtype_policy.name)
  path = os.path.join(staged, RESULTS_FILE)
  with open(path, "w", encoding="utf-8") as f:
    f.write(json.dumps(results, indent=2) + "\n")
  card = model_card.render(results, _facts(cfg, data, histories, encoder),
                           data.label_set.names)
  with open(os.path.join(staged, model_card.CARD_FILE), "w",
            encoding="utf-8") as f:
    f.write(card)
  if flags_text is not None:
    name = {"distill": DISTILL_FLAGS_FILE,
            "calibrate": CALIBRATE_FLAGS_FILE,
            "tune_exits": TUNE_EXITS_FLAGS_FILE}.get(cfg.phase, FLAGS_FILE)
    with open(os.path.join(staged, name), "w", encoding="utf-8") as f:
      f.write(flags_text)
  logging.info("Staged %s", path)
  return results


def _facts(cfg, data, histories, encoder):
  """What the model card says about how the model was made."""
  epochs = {"finetune": cfg.finetune_epochs, "joint": cfg.finetune_epochs,
            "distill": cfg.distill_epochs,
            "tune_exits": cfg.tune_exits_epochs}
  return dict(
      name=os.path.basename(os.path.normpath(cfg.model_dir)),
      model_dir=cfg.model_dir, data=cfg.data,
      train_examples=len(data.splits["train"]),
      init_checkpoint=cfg.init_checkpoint or None,
      preset=cfg.preset or None,
      phases=[dict(phase=p, epochs=epochs[p]) for p in histories],
      max_seq_length=encoder.max_seq_length, dtype=cfg.dtype_policy)


def read(model_dir):
  """The results.json of a published model."""
  with open(os.path.join(model_dir, RESULTS_FILE), encoding="utf-8") as f:
    return json.load(f)
