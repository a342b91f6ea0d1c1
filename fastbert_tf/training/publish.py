"""Publishing a staged model into its model directory, MANIFEST.json last.

A run stages the model's files under `<model_dir>/.run/` (training/run_dir.py)
and `publish` moves them in; the manifest, written last, lists every file
with its sha256, so a reader (models.saving.verify) can tell a complete
model from a half-published one. Publishing is restartable: its plan is
written first, and a run killed halfway finishes the same publication when
it is run again.
"""

import datetime
import os
import uuid

from absl import logging

from fastbert_tf.data import tokenizer as tokenizer_lib
from fastbert_tf.models import saving


def publish(staged_dir, model_dir, run_id, plan_path, info=None,
            after_move=None):
  """Moves a staged model into `model_dir`, MANIFEST.json last.

  Restartable: the plan (the new manifest) is written to `plan_path` first;
  called again after a kill it finishes the same publication.

  Args:
    staged_dir: str, the complete new model's files (top level only).
    model_dir: str.
    run_id: str, recorded in the manifest.
    plan_path: str, where the plan is kept (inside the run directory).
    info: optional dict recorded in the manifest (phases, package version).
    after_move: optional callable(number of files moved), for tests.

  Returns:
    The manifest dict.
  """
  if os.path.isfile(plan_path):
    manifest = saving.read_json(plan_path)
  else:
    names = sorted(n for n in os.listdir(staged_dir)
                   if os.path.isfile(os.path.join(staged_dir, n)))
    manifest = dict(
        format=saving.MANIFEST_FORMAT, run_id=run_id,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        info=info or {},
        files={n: dict(sha256=saving.sha256(os.path.join(staged_dir, n)),
                       bytes=os.path.getsize(os.path.join(staged_dir, n)))
               for n in names})
    old = _old_files(model_dir)
    manifest["replaces"] = sorted(set(old) - set(names))
    saving.write_json(plan_path, manifest)
  old_manifest = os.path.join(model_dir, saving.MANIFEST_FILE)
  if os.path.exists(old_manifest):
    os.remove(old_manifest)  # from here on the directory reads "unfinished"
  for moved, name in enumerate(manifest["files"], start=1):
    source = os.path.join(staged_dir, name)
    if os.path.exists(source):
      os.replace(source, os.path.join(model_dir, name))
      if after_move:
        after_move(moved)
  for name in manifest.get("replaces", ()):
    stale = os.path.join(model_dir, name)
    if os.path.isfile(stale):
      os.remove(stale)
  public = {k: v for k, v in manifest.items() if k != "replaces"}
  saving.write_json(os.path.join(model_dir, saving.MANIFEST_FILE), public)
  logging.info("Published %d files into %s (run %s).", len(manifest["files"]),
               model_dir, run_id)
  return public


def _old_files(model_dir):
  """Files of the model now in model_dir (manifest, or legacy guess)."""
  path = os.path.join(model_dir, saving.MANIFEST_FILE)
  if os.path.isfile(path):
    return list(saving.read_json(path).get("files", {}))
  known = (saving.CONFIG_FILE, saving.WEIGHTS_FILE, saving.TOKENIZER_FILE,
           saving.VOCAB_FILE, tokenizer_lib.SENTENCEPIECE_FILE,
           tokenizer_lib.KEPT_IDS_FILE)
  return [n for n in known if os.path.isfile(os.path.join(model_dir, n))]


def new_run_id():
  """A run's id: its start time, then 6 random hex digits (two runs
  started in the same second still differ)."""
  return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + (
      uuid.uuid4().hex[:6])
