"""The fault kinds of bench/training_faults.py: bad data files, bad labels,
bad flags, damaged model files, foreign directories and kills, each run
through the real command lines (python -m fastbert_tf.train / .predict).

Every kind is a function `kind(ctx) -> (verdict, detail)`; `ctx` is a
TrainingContext holding a tiny task, a finished model (`ctx.model`, restored
from a pristine copy after every kind) and the verdict helpers.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from fastbert_tf import testing
from fastbert_tf.testing import invisible_text as invisible
from fastbert_tf.models import saving

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny task (tests/test_model_dir.py's): 48 rows, batch 8, 1 + 1 epochs.
TINY = ("--preset=test_tiny", "--vocab_size=40", "--max_seq_length=16",
        "--batch_size=8", "--finetune_epochs=1", "--distill_epochs=1",
        "--finetune_learning_rate=1e-3", "--speeds=0,0.5")
HEADER = "label\ttext_a\n"


def snapshot(directory):
  """{file name: sha256} of a directory's top-level files."""
  if not os.path.isdir(directory):
    return {}
  return {n: saving.sha256(os.path.join(directory, n))
          for n in sorted(os.listdir(directory))
          if os.path.isfile(os.path.join(directory, n))}


class TrainingContext:
  """A tiny task and a finished model in `tmp`, and the commands' runners.

  Args:
    tmp: str, an empty scratch directory.
  """

  def __init__(self, tmp):
    self.tmp = tmp
    self.data = os.path.join(tmp, "data")
    os.makedirs(self.data)
    testing.write_letter_task(self.data, train=48, dev=16, test=16)
    self.pristine = os.path.join(tmp, "pristine")
    result = self.train(model_dir=self.pristine)
    if result.returncode:
      raise RuntimeError("the reference training failed:\n" +
                         result.stderr[-3000:])
    with open(os.path.join(self.pristine, "results.json"),
              encoding="utf-8") as f:
      self.reference = json.load(f)
    self.model = os.path.join(tmp, "model")
    self.texts = os.path.join(tmp, "texts.txt")
    with open(self.texts, "w", encoding="utf-8") as f:
      f.write("abc\nbca\n")
    self._count = 0
    self.reset_model()

  def reset_model(self):
    """ctx.model: a fresh copy of the finished model; scratch data cleared."""
    shutil.rmtree(self.model, ignore_errors=True)
    shutil.copytree(self.pristine, self.model)

  def scratch(self, name):
    """A new empty directory for one kind."""
    self._count += 1
    path = os.path.join(self.tmp, f"{self._count:02d}_{name}")
    os.makedirs(path)
    return path

  def data_with(self, name, **files):
    """A copy of the task with some split files replaced (str or bytes;
    None deletes the split)."""
    path = self.scratch(name)
    for split in ("train", "dev", "test"):
      content = files.get(split, "keep")
      target = os.path.join(path, f"{split}.tsv")
      if content is None:
        continue
      if isinstance(content, str) and content == "keep":
        shutil.copy(os.path.join(self.data, f"{split}.tsv"), target)
      else:
        with open(target, "wb") as f:
          f.write(content.encode("utf-8") if isinstance(content, str)
                  else content)
    return path

  def run(self, module, *args, kill_at=None):
    """`python -m module args` from the repository root."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([*testing.python_m(module, kill_at), *args],
                          cwd=ROOT,
                          capture_output=True, text=True, env=env,
                          timeout=900)

  def train(self, *extra, data=None, model_dir=None, kill_at=None,
            tiny=TINY):
    """fastbert_tf.train on the tiny task (flags later in `extra` win)."""
    return self.run("fastbert_tf.train", f"--data={data or self.data}",
                    f"--model_dir={model_dir or self.model}", *tiny, *extra,
                    kill_at=kill_at)

  def predict(self, model_dir=None, *extra):
    """fastbert_tf.predict of two texts with a model directory."""
    out = os.path.join(self.scratch("predict"), "answers.jsonl")
    return self.run("fastbert_tf.predict",
                    f"--model_dir={model_dir or self.model}",
                    f"--input={self.texts}", f"--output={out}", *extra)


def _error_lines(stderr):
  return [l for l in stderr.splitlines()
          if l.startswith("error: ") or "Flags parsing error" in l]


def refused(result, *needles, untouched=None, before=None):
  """The verdict on a command that should refuse: `clear` when it exits 1
  with one error line holding every needle and no traceback; `lost` when
  `untouched` (a directory) changed from `before`."""
  if untouched is not None and snapshot(untouched) != before:
    return "lost", f"{untouched} changed"
  if result.returncode == 0:
    return "silent", "accepted (exit 0)"
  if "Traceback" in result.stderr or result.returncode != 1:
    return "crash", (f"exit {result.returncode}: " +
                     result.stderr.strip().splitlines()[-1][:200])
  errors = _error_lines(result.stderr)
  if len(errors) != 1:
    return "unclear", f"{len(errors)} error lines: {errors[:2]}"
  missing = [n for n in needles if n not in errors[0]]
  if missing:
    return "unclear", f"{errors[0][:160]} (does not say {missing})"
  return "clear", errors[0][:200]


def succeeded(result, check=None):
  """`correct` when the command exits 0 and `check()` (if any) returns None;
  otherwise what check said (as `silent`) or the failure."""
  if result.returncode != 0:
    verdict = "crash" if ("Traceback" in result.stderr or
                          result.returncode not in (1,)) else "unclear"
    lines = result.stderr.strip().splitlines() or [""]
    return verdict, f"exit {result.returncode}: {lines[-1][:200]}"
  problem = check() if check else None
  return ("silent", problem) if problem else ("correct", "as expected")


def _results(model_dir):
  with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
    return json.load(f)


def _same_results(ctx, model_dir):
  """None when model_dir's test accuracies equal the reference run's."""
  ours = [r["accuracy"] for r in _results(model_dir)["speeds"]]
  theirs = [r["accuracy"] for r in ctx.reference["speeds"]]
  return None if ours == theirs else f"accuracies {ours} != {theirs}"


def _train_text(ctx):
  with open(os.path.join(ctx.data, "train.tsv"), encoding="utf-8") as f:
    return f.read()


def _with_train_rows(ctx, name, rows):
  """The task with `rows` appended to train.tsv (after its 48 rows: the
  first appended row is line 50)."""
  return ctx.data_with(name, train=_train_text(ctx) + rows)


def _fresh(ctx, name):
  return os.path.join(ctx.scratch(name), "model")


def _refused_data(ctx, name, needles, **files):
  """Trains on the task with some split files replaced (see data_with) into
  a new directory; the verdict of `refused` with these needles."""
  data = ctx.data_with(name, **files)
  return refused(ctx.train(data=data, model_dir=_fresh(ctx, "m")), *needles)


# --- data files ----------------------------------------------------------


def data_missing_directory(ctx):
  return refused(ctx.train(data="/nonexistent/data",
                           model_dir=_fresh(ctx, "m")), "/nonexistent/data")


def data_missing_dev_split(ctx):
  return _refused_data(ctx, "nodev", ["dev"],
                       dev=None)


def data_empty_train_file(ctx):
  return _refused_data(ctx, "empty", ["train.tsv", "empty"],
                       train="")


def data_bad_header(ctx):
  return _refused_data(ctx, "header", ["train.tsv:1", "header"],
                       train="label\ttext\n0\tabc\n")


def data_label_not_an_integer(ctx):
  return _refused_data(ctx, "label", ["train.tsv:3", "yes"],
                       train=HEADER + "0\tabc\nyes\tbca\n1\tcab\n")


def data_wrong_column_count(ctx):
  return _refused_data(ctx, "cols", ["train.tsv:3", "column"],
                       train=HEADER + "0\tabc\n1\tbca\textra\n")


def data_not_utf8(ctx):
  return _refused_data(ctx, "latin1", ["train.tsv", "UTF-8"],
                       train=(HEADER + "0\tabc\n1\tcaf").encode()
                       + b"\xe9\n")


def data_empty_text(ctx):
  return _refused_data(ctx, "emptytext", ["train.tsv:3", "empty"],
                       train=HEADER + "0\tabc\n1\t  \n")


# TEXT class (issue 21): texts empty to the tokenizer, by character class,
# generated (seeded) rather than listed; each must stop the run naming the
# line, like the blank text above.
TEXT_CLASSES = invisible.CLASSES


invisible_text = invisible.invisible_text


def _invisible_text_kind(name, alphabet):
  def kind(ctx):
    return _refused_data(ctx, f"text_{name}", ["train.tsv:3", "is empty"],
                         train=HEADER + f"0\tabc\n1\t"
                         f"{invisible_text(alphabet, len(name))}\n")
  kind.__name__ = f"data_invisible_{name}_text"
  return kind


for _name, _alphabet in TEXT_CLASSES.items():
  globals()[f"data_invisible_{_name}_text"] = _invisible_text_kind(
      _name, _alphabet)


def data_pairs_among_single_texts(ctx):
  return _refused_data(ctx, "pairs", ["dev.tsv"],
                       dev="label\ttext_a\ttext_b\n0\ta\tb\n")


def data_bom_and_crlf_train_the_same(ctx):
  data = ctx.data_with("bom", train=b"\xef\xbb\xbf" +
                       _train_text(ctx).replace("\n", "\r\n").encode())
  model_dir = _fresh(ctx, "m")
  return succeeded(ctx.train(data=data, model_dir=model_dir),
                   lambda: _same_results(ctx, model_dir))


def data_skip_bad_rows_within_the_cap(ctx):
  data = _with_train_rows(ctx, "skip", "x\tbad\n")
  model_dir = _fresh(ctx, "m")

  def check():
    skipped = _results(model_dir).get("skipped_rows") or {}
    return None if "train.tsv:50" in json.dumps(skipped) else (
        f"results.json does not record the skipped row: {skipped}")
  return succeeded(ctx.train("--skip_bad_rows", "--max_bad_rows=1",
                             data=data, model_dir=model_dir), check)


def data_skip_bad_rows_over_the_cap(ctx):
  data = _with_train_rows(ctx, "skipcap", "x\tbad\ny\tbad\n")
  return refused(ctx.train("--skip_bad_rows", "--max_bad_rows=1", data=data,
                           model_dir=_fresh(ctx, "m")),
                 "train.tsv", "--max_bad_rows")


# --- labels ----------------------------------------------------------------


def labels_one_typo(ctx):
  data = _with_train_rows(ctx, "typo", "5\tabc\n")
  return refused(ctx.train(data=data, model_dir=_fresh(ctx, "m")),
                 "train.tsv:50", "5")


def labels_huge_id(ctx):
  data = _with_train_rows(ctx, "huge", "100000\tabc\n")
  return refused(ctx.train(data=data, model_dir=_fresh(ctx, "m")),
                 "100000")


def labels_all_zero(ctx):
  return _refused_data(ctx, "zeros", ["train.tsv", "at least 2 classes"],
                       train=HEADER + "0\tabc\n0\tbca\n",
                       dev=HEADER + "0\tabc\n", test=HEADER + "0\tcab\n")


def labels_class_only_in_dev(ctx):
  return _refused_data(ctx, "devonly", ["dev.tsv:3", "2"],
                       dev=HEADER + "0\tabc\n2\tbca\n")


def labels_outside_num_classes(ctx):
  data = _with_train_rows(ctx, "outside", "3\tabc\n")
  return refused(ctx.train("--num_classes=3", data=data,
                           model_dir=_fresh(ctx, "m")), "train.tsv:50", "3")


def labels_names_disagree_with_num_classes(ctx):
  return refused(ctx.train("--labels=neg,pos,neutral", "--num_classes=2",
                           model_dir=_fresh(ctx, "m")), "--labels")


def labels_names_saved(ctx):
  model_dir = _fresh(ctx, "m")

  def check():
    with open(os.path.join(model_dir, "labels.json"), encoding="utf-8") as f:
      names = json.load(f).get("names")
    return None if names == ["neg", "pos"] else f"labels.json names {names}"
  return succeeded(ctx.train("--labels=neg,pos", model_dir=model_dir), check)


# --- flags -----------------------------------------------------------------


def _overwrite_refused(ctx, *bad, needles, tiny=TINY):
  before = snapshot(ctx.model)
  result = ctx.train("--overwrite", *bad, tiny=tiny)
  return refused(result, *needles, untouched=ctx.model, before=before)


def flags_unknown_preset_over_a_model(ctx):
  tiny = [f for f in TINY if not f.startswith("--preset")]
  return _overwrite_refused(ctx, "--preset=nope", needles=["nope"],
                            tiny=tiny)


def flags_broken_config_json_over_a_model(ctx):
  path = os.path.join(ctx.scratch("cfg"), "config.json")
  with open(path, "w", encoding="utf-8") as f:
    f.write("{not json")
  tiny = [f for f in TINY if not f.startswith("--preset")]
  return _overwrite_refused(ctx, f"--config_json={path}", needles=[path],
                            tiny=tiny)


def flags_missing_init_checkpoint_over_a_model(ctx):
  return _overwrite_refused(ctx, "--init_checkpoint=/nonexistent/ckpt",
                            needles=["/nonexistent/ckpt"])


def flags_garbage_init_checkpoint(ctx):
  path = os.path.join(ctx.scratch("ckpt"), "model.safetensors")
  with open(path, "wb") as f:
    f.write(b"\x00garbage" * 64)
  return _overwrite_refused(ctx, f"--init_checkpoint={path}",
                            needles=["model.safetensors"])


def flags_zero_batch_size(ctx):
  return _overwrite_refused(ctx, "--batch_size=0", needles=["--batch_size"])


def flags_zero_max_seq_length(ctx):
  return _overwrite_refused(ctx, "--max_seq_length=1",
                            needles=["--max_seq_length"])


def flags_speed_out_of_range(ctx):
  return _overwrite_refused(ctx, "--speeds=0,1.5", needles=["1.5"])


def flags_unknown_flag(ctx):
  return _overwrite_refused(ctx, "--finetune_epoch=2",
                            needles=["finetune_epoch"])


def flags_negative_epochs(ctx):
  return _overwrite_refused(ctx, "--finetune_epochs=-1",
                            needles=["--finetune_epochs"])


def flags_class_weights_wrong_count(ctx):
  return _overwrite_refused(ctx, "--class_weights=1,2,3",
                            needles=["--class_weights"])


def flags_missing_vocab_file(ctx):
  return _overwrite_refused(ctx, "--vocab=/nonexistent/vocab.txt",
                            needles=["/nonexistent/vocab.txt"])


# --- model directories -----------------------------------------------------


def dir_finished_model_without_overwrite(ctx):
  before = snapshot(ctx.model)
  return refused(ctx.train(), "holds a finished model", "--overwrite",
                 untouched=ctx.model, before=before)


def dir_model_dir_is_a_file(ctx):
  path = os.path.join(ctx.scratch("file"), "model")
  with open(path, "w", encoding="utf-8") as f:
    f.write("not a directory\n")
  return refused(ctx.train(model_dir=path), path)


def dir_foreign_files_are_not_deleted(ctx):
  model_dir = ctx.scratch("foreign")
  notes = os.path.join(model_dir, "notes.txt")
  with open(notes, "w", encoding="utf-8") as f:
    f.write("mine\n")
  result = ctx.train(model_dir=model_dir)
  if not os.path.isfile(notes):
    return "lost", f"{notes} deleted"
  if result.returncode == 0:
    return "correct", "trained beside the foreign file, which is kept"
  return refused(result, model_dir)


def dir_changed_vocab_is_named(ctx):
  with open(os.path.join(ctx.model, "vocab.txt"), "a", encoding="utf-8") as f:
    f.write("extra\n")
  return refused(ctx.predict(), "vocab.txt", "changed")


def dir_truncated_weights_are_named(ctx):
  path = os.path.join(ctx.model, "model.weights.h5")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])
  return refused(ctx.predict(), "model.weights.h5")


def dir_garbage_weights_without_manifest(ctx):
  with open(os.path.join(ctx.model, "model.weights.h5"), "wb") as f:
    f.write(b"not an h5 file" * 100)
  os.remove(os.path.join(ctx.model, saving.MANIFEST_FILE))
  return refused(ctx.predict(), "model.weights.h5", "cannot load")


def dir_edited_config_is_named(ctx):
  path = os.path.join(ctx.model, "config.json")
  with open(path, encoding="utf-8") as f:
    config = json.load(f)
  config["num_classes"] = 3
  with open(path, "w", encoding="utf-8") as f:
    json.dump(config, f)
  return refused(ctx.predict(), "config.json")


def dir_garbage_manifest(ctx):
  with open(os.path.join(ctx.model, saving.MANIFEST_FILE), "w",
            encoding="utf-8") as f:
    f.write("[1, 2")
  return refused(ctx.predict(), saving.MANIFEST_FILE)


def dir_deleted_manifest_still_loads(ctx):
  os.remove(os.path.join(ctx.model, saving.MANIFEST_FILE))
  result = ctx.predict()
  return succeeded(result, lambda: None if "no MANIFEST.json" in
                   result.stderr else "no warning about the manifest")


def dir_missing_weights_are_named(ctx):
  os.remove(os.path.join(ctx.model, "model.weights.h5"))
  return refused(ctx.predict(), "model.weights.h5", "missing")


def dir_empty_directory_is_named(ctx):
  path = ctx.scratch("empty")
  return refused(ctx.predict(model_dir=path), path, "not a model")


# --- kills -------------------------------------------------------------------


def _killed_then_rerun(ctx, kill_at, *extra):
  model_dir = _fresh(ctx, "killed")
  killed = ctx.train(*extra, model_dir=model_dir, kill_at=kill_at)
  if killed.returncode not in (-9, 137):
    return "crash", f"the kill at {kill_at} did not happen " \
                    f"(exit {killed.returncode})"
  unfinished = ctx.predict(model_dir=model_dir)
  verdict, detail = refused(unfinished, "unfinished")
  if verdict != "clear":
    return ("silent" if verdict == "silent" else verdict,
            f"loading the unfinished run: {detail}")
  return succeeded(ctx.train(*extra, model_dir=model_dir),
                   lambda: _same_results(ctx, model_dir))


def kill_in_phase_1_then_rerun(ctx):
  return _killed_then_rerun(ctx, "finetune:4", "--checkpoint_every_steps=2")


def kill_in_phase_2_then_rerun(ctx):
  return _killed_then_rerun(ctx, "distill:4", "--checkpoint_every_steps=2")


def kill_during_publication_then_rerun(ctx):
  return _killed_then_rerun(ctx, "publish:2")


def kill_during_overwrite_keeps_the_old_model(ctx):
  before = snapshot(ctx.model)
  killed = ctx.train("--overwrite", "--checkpoint_every_steps=2",
                     kill_at="finetune:2")
  if snapshot(ctx.model) != before:
    return "lost", "the finished model changed during the killed overwrite"
  if killed.returncode not in (-9, 137):
    return "crash", f"the kill did not happen (exit {killed.returncode})"
  loads = ctx.predict()
  if loads.returncode:
    return "lost", "the old model no longer loads: " + \
        loads.stderr.strip().splitlines()[-1][:160]
  return succeeded(ctx.train("--overwrite"),
                   lambda: _same_results(ctx, ctx.model))


def kill_then_rerun_with_other_flags(ctx):
  model_dir = _fresh(ctx, "killed")
  ctx.train("--checkpoint_every_steps=2", model_dir=model_dir,
            kill_at="finetune:2")
  return refused(ctx.train("--checkpoint_every_steps=2", "--seed=7",
                           model_dir=model_dir), "unfinished run", "--seed")


def kill_then_corrupt_checkpoint_then_rerun(ctx):
  model_dir = _fresh(ctx, "killed")
  ctx.train("--checkpoint_every_steps=2", model_dir=model_dir,
            kill_at="finetune:4")
  latest = os.path.join(model_dir, ".run", "finetune", "latest")
  damaged = []
  for name in sorted(os.listdir(latest)) if os.path.isdir(latest) else []:
    if ".data-" in name:
      with open(os.path.join(latest, name), "wb") as f:
        f.write(b"\x00" * 16)
      damaged.append(name)
  if not damaged:
    return "crash", f"no checkpoint data under {latest}"
  result = ctx.train("--checkpoint_every_steps=2", model_dir=model_dir)
  if result.returncode == 0:
    return "silent", "resumed from a damaged checkpoint without a word"
  return refused(result, "finetune")


def kill_during_export_then_export_again(ctx):
  """SIGKILL an export once its staging directory appears; the next export
  removes the dead one's staging and publishes a version that loads."""
  base = ctx.scratch("exports")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  child = subprocess.Popen(
      [sys.executable, "-m", "export.export_saved_model",
       f"--model_dir={ctx.model}", f"--export_base={base}"], cwd=ROOT,
      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while time.time() < deadline and child.poll() is None and not any(
      n.startswith(".tmp-") for n in os.listdir(base)):
    time.sleep(0.05)
  if child.poll() is not None:
    return "crash", f"the export ended (exit {child.returncode}) before " \
                    "its staging directory could be seen"
  child.send_signal(signal.SIGKILL)  # while it writes its staging copy
  child.wait()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  published = [n for n in os.listdir(base) if not n.startswith(".tmp-")]
  for name in published:  # only whole versions may ever appear
    try:
      tf.saved_model.load(os.path.join(base, name))
    except Exception as e:  # pylint: disable=broad-except
      return "silent", f"the killed export left version {name} that does " \
                       f"not load: {e!r}"[:200]
  again = ctx.run("export.export_saved_model", f"--model_dir={ctx.model}",
                  f"--export_base={base}")

  def check():
    names = sorted(os.listdir(base))
    if any(n.startswith(".tmp-") for n in names):
      return f"the dead export's staging is still there: {names}"
    new = [n for n in names if n not in published]
    if len(new) != 1:
      return f"versions after the second export: {names}"
    tf.saved_model.load(os.path.join(base, new[0]))
    return None
  return succeeded(again, check)


KINDS = [v for k, v in list(globals().items())
         if callable(v) and k.split("_")[0] in
         ("data", "labels", "flags", "dir", "kill")]
