"""A saved model is a directory whose files belong together.

  config.json          FastBertClassifier.get_config(), the backbone's nested
                       (also a --config_json; flat in directories written
                       before the backbone became an argument)
  model.weights.h5     the weights
  tokenizer.json       encoder settings, + vocab.txt or sentencepiece.model
                       (+ kept_token_ids.npy when the vocabulary is pruned)
  labels.json          the label set (names when known)
  results.json, flags.txt, MODEL_CARD.md   what the run measured and was
  MANIFEST.json        written LAST: every file above with its sha256 and
                       size, and the run that wrote them

A training run never writes into a published model directly: it stages its
files under `<model_dir>/.run/` and training/publish.py moves them in, the
manifest last, so a killed run leaves either the old model or no manifest
(refused), never old weights beside a new vocabulary. `load_model` (and so
export, the sweep, the Predictor) checks the manifest first (`verify`) and
names any file that does not belong. Directories written before manifests
existed still load, with a warning.
"""

import hashlib
import json
import os

import tensorflow as tf
from absl import logging

from fastbert_tf import paths
from fastbert_tf.data import tokenizer as tokenizer_lib
from fastbert_tf.errors import ModelDirError
from fastbert_tf.models import architecture
from fastbert_tf.models.fastbert_classifier import FastBertClassifier

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
VOCAB_FILE = tokenizer_lib.VOCAB_FILE
TOKENIZER_FILE = tokenizer_lib.TOKENIZER_FILE
MANIFEST_FILE = "MANIFEST.json"
RUN_DIR = ".run"
MANIFEST_FORMAT = "fastbert_tf model directory"


def save_model(model, encoder, directory):
  """Writes the model and its tokenizer into `directory` (no manifest: a
  staging directory, published by training/publish.py).

  Args:
    model: a built FastBertClassifier.
    encoder: the data.tokenizer.Encoder it was trained with.
    directory: str, created if missing.
  """
  tf.io.gfile.makedirs(directory)
  config = {k: v for k, v in model.get_config().items()
            if k not in ("name", "trainable", "dtype")}
  # The policy by name ("mixed_bfloat16") rather than Keras' serialized
  # object, in the model's and the backbone's config, for people to read.
  config = architecture.with_dtype(config, model.dtype_policy.name)
  write_json(os.path.join(directory, CONFIG_FILE), config)
  encoder.save(directory)
  # h5py crashes the process (SIGSEGV) when the disk fills under it, so a
  # write that cannot fit is refused before it starts.
  paths.ensure_free_space(directory, _weights_bytes(model),
                          f"{WEIGHTS_FILE}")
  model.save_weights(os.path.join(directory, WEIGHTS_FILE))


def _weights_bytes(model):
  """An upper bound of model.weights.h5's size: the values plus h5's
  per-dataset overhead (measured: about 2.5 KiB per variable; 4 KiB
  assumed) and 64 KiB for its header."""
  values = sum(int(v.dtype.size if hasattr(v.dtype, "size") else 4) *
               int(max(1, _count(v.shape))) for v in model.weights)
  return values + 4096 * len(model.weights) + (64 << 10)


def _count(shape):
  total = 1
  for dim in shape:
    total *= int(dim)
  return total


def load_model(model_dir, dtype=None, verify_files=True):
  """Loads a model directory, after checking that its files belong together.

  Args:
    model_dir: str.
    dtype: optional Keras dtype policy name to run the model in instead of
      the one it was saved with (e.g. "float32" for a mixed_float16 model on
      a CPU); the weights are float32 either way.
    verify_files: check MANIFEST.json (off only for staging directories).

  Returns:
    (FastBertClassifier, data.tokenizer.Encoder).

  Raises:
    ModelDirError: a missing or changed file, an unfinished run, unreadable
      weights or config, naming the file.
  """
  if verify_files:
    verify(model_dir)
  for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
    path = os.path.join(model_dir, name)
    if not tf.io.gfile.exists(path):
      raise ModelDirError(f"{path}: missing; is {model_dir} a model "
                          "directory written by fastbert_tf?")
  config = read_json(os.path.join(model_dir, CONFIG_FILE))
  if dtype:
    config = architecture.with_dtype(config, dtype)
  try:
    model = FastBertClassifier.from_config(config)
  except (TypeError, ValueError) as e:
    raise ModelDirError(f"{os.path.join(model_dir, CONFIG_FILE)}: not a "
                        f"FastBertClassifier config ({e})") from None
  model.build()
  weights = os.path.join(model_dir, WEIGHTS_FILE)
  try:
    model.load_weights(weights)
  except Exception as e:  # pylint: disable=broad-except
    # h5py raises OSError for truncated or foreign files, Keras ValueError
    # for mismatched layers: either way the file is what the user must fix.
    raise ModelDirError(f"{weights}: cannot load the weights "
                        f"({type(e).__name__}: {_first_line(e)})") from None
  try:
    encoder = tokenizer_lib.load_encoder(model_dir)
  except (ValueError, OSError, tf.errors.OpError) as e:
    raise ModelDirError(f"{model_dir}: cannot load the tokenizer "
                        f"({_first_line(e)})") from None
  return model, encoder


def verify(model_dir):
  """Checks MANIFEST.json against the files.

  Returns:
    The manifest dict, or None for a directory written before manifests
    (logged as a warning).

  Raises:
    ModelDirError: not a model directory, an unfinished run, or a file
      missing, resized or changed since the manifest was written.
  """
  manifest_path = os.path.join(model_dir, MANIFEST_FILE)
  if not os.path.isfile(manifest_path):
    if os.path.isdir(os.path.join(model_dir, RUN_DIR)):
      raise ModelDirError(
          f"{model_dir}: holds an unfinished training run (no "
          f"{MANIFEST_FILE}, a {RUN_DIR}/ in progress); rerun the training "
          "command to finish it")
    if not os.path.isfile(os.path.join(model_dir, CONFIG_FILE)):
      raise ModelDirError(f"{model_dir}: not a fastbert_tf model directory "
                          f"(no {MANIFEST_FILE} or {CONFIG_FILE})")
    logging.warning("%s: no %s (written before manifests existed); its "
                    "files cannot be checked to belong together.", model_dir,
                    MANIFEST_FILE)
    return None
  manifest = read_json(manifest_path)
  files = manifest.get("files")
  if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
    raise ModelDirError(f"{manifest_path}: not a fastbert_tf manifest")
  for name, entry in sorted(files.items()):
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
      raise ModelDirError(f"{path}: listed in {MANIFEST_FILE} (run "
                          f"{manifest.get('run_id')}) but missing")
    if os.path.getsize(path) != entry["bytes"] or sha256(path) != (
        entry["sha256"]):
      raise ModelDirError(
          f"{path}: changed since run {manifest.get('run_id')} wrote this "
          f"model ({MANIFEST_FILE} has another size or sha256); the "
          "directory's files no longer belong together")
  return manifest


def sha256(path, chunk=1 << 20):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(chunk), b""):
      digest.update(block)
  return digest.hexdigest()


def write_json(path, obj):
  """Writes json atomically (a temporary file renamed into place)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
            + "\n")
  os.replace(tmp, path)


def read_json(path):
  """A json object from `path`; errors name the file."""
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      value = json.loads(f.read())
  except json.JSONDecodeError as e:
    raise ModelDirError(f"{path}: not valid json ({e})") from None
  except (OSError, tf.errors.OpError) as e:
    raise ModelDirError(f"{path}: cannot read ({_first_line(e)})") from None
  if not isinstance(value, dict):
    raise ModelDirError(f"{path}: expected a json object, got "
                        f"{type(value).__name__}")
  return value


def _first_line(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__
