"""Smoke test of `python -m fastbert_tf.train` on a tiny generated TSV."""

import json
import os
import subprocess
import sys

import pytest

from fastbert_tf import testing
from fastbert_tf.data import sources

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "fastbert_tf.train", *args],
                        cwd=ROOT, capture_output=True, text=True, env=env,
                        timeout=600)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return testing.write_letter_task(tmp_path_factory.mktemp("data"),
                                 train=64, dev=16, test=24)


def test_trains_both_phases_and_writes_everything(data_dir, tmp_path):
  model_dir = tmp_path / "model"
  result = _train(
      f"--data={data_dir}", f"--model_dir={model_dir}", "--preset=test_tiny",
      "--vocab_size=40", "--max_seq_length=16", "--batch_size=8",
      "--finetune_epochs=1", "--distill_epochs=1",
      "--finetune_learning_rate=1e-3", "--speeds=0,0.5,1",
      f"--export_base={tmp_path / 'exports'}")
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("config.json", "model.weights.h5", "vocab.txt",
               "tokenizer.json", "flags.txt", "results.json", "labels.json",
               "MODEL_CARD.md", "MANIFEST.json"):
    assert (model_dir / name).exists(), name
  assert not (model_dir / ".run").exists()  # the run published and left
  card = (model_dir / "MODEL_CARD.md").read_text()
  assert "| 0.5 | " in card  # the speed table made it in
  assert (model_dir / "logs" / "finetune").is_dir()
  assert (model_dir / "logs" / "distill").is_dir()
  results = json.loads((model_dir / "results.json").read_text())
  assert [r["speed"] for r in results["speeds"]] == [0.0, 0.5, 1.0]
  for record in results["speeds"]:
    assert set(record) >= {"accuracy", "mean_exit_layer", "mean_flops",
                           "speedup"}
    assert record["num_samples"] == 24  # every test row evaluated
  assert results["speeds"][0]["mean_exit_layer"] == 3.0
  assert results["speeds"][2]["mean_exit_layer"] == 1.0
  assert results["labels"] == {"num_classes": 2, "names": None}
  assert results["baseline_flops"] > 0
  # letter_task texts have at most 9 letters: nothing cut at 16 tokens.
  assert results["truncated_examples"] == {"train": 0, "dev": 0, "test": 0}
  assert "speed" in result.stdout and "speedup" in result.stdout
  assert (tmp_path / "exports" / "1" / "saved_model.pb").exists()

  # flags.txt is a valid flagfile: rerun phase 2 alone from it.
  flags_text = (model_dir / "flags.txt").read_text()
  assert "--preset=test_tiny" in flags_text
  # Every line is a flag: unset ones (--text_prefix) leave no empty line.
  assert all(l.startswith("--") for l in flags_text.splitlines()), flags_text
  # Phase 2 again, fresh students, on a labelled TSV's texts.
  rerun = _train(f"--flagfile={model_dir / 'flags.txt'}", "--phase=distill",
                 "--reinit_students", f"--distill_data={data_dir}/dev.tsv")
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert "Re-initialized 2 student classifiers" in rerun.stderr
  assert f"Phase 2 distills on 16 texts from {data_dir}/dev.tsv" in rerun.stderr
  # The distill-only run keeps phase 1's record and writes its own.
  assert (model_dir / "flags.txt").read_text() == flags_text
  assert "--phase=distill" in (model_dir / "flags_distill.txt").read_text()
  # --reinit_students is for distill-only runs; elsewhere it is refused.
  refused = _train(f"--flagfile={model_dir / 'flags.txt'}", "--reinit_students")
  assert refused.returncode != 0
  assert "--reinit_students applies to --phase=distill" in refused.stderr
  refused = _train(f"--flagfile={model_dir / 'flags.txt'}", "--phase=finetune",
                   f"--distill_data={data_dir}/dev.tsv")
  assert refused.returncode != 0
  assert "--distill_data is phase 2's; --phase=finetune" in refused.stderr


def test_bad_row_stops_with_path_and_line(tmp_path):
  rows = testing.letter_task(6)
  testing.write_tsv(tmp_path / "train.tsv", rows[:3] + [("x", "a b")] + rows[3:])
  for split in ("dev", "test"):
    testing.write_tsv(tmp_path / f"{split}.tsv", rows)
  result = _train(f"--data={tmp_path}", f"--model_dir={tmp_path / 'm'}",
                  "--preset=test_tiny")
  assert result.returncode != 0
  assert f"{tmp_path / 'train.tsv'}:5:" in result.stderr
  assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ["\u200b\x01\u200e\u202e",
                                  "\u0301\u0301"])
def test_invisible_only_text_stops_with_path_and_line(tmp_path, text):
  # Issue 21, reproduction 3: such rows trained with no warning.
  rows = testing.letter_task(6)
  testing.write_tsv(tmp_path / "train.tsv", rows[:3] + [(1, text)] + rows[3:])
  for split in ("dev", "test"):
    testing.write_tsv(tmp_path / f"{split}.tsv", rows)
  result = _train(f"--data={tmp_path}", f"--model_dir={tmp_path / 'm'}",
                  "--preset=test_tiny", "--vocab_size=40",
                  "--max_seq_length=16", "--batch_size=4")
  assert result.returncode != 0
  assert f"{tmp_path / 'train.tsv'}:5: text_a is empty to the tokenizer" in (
      result.stderr)
  assert "Traceback" not in result.stderr


def test_pair_distill_data_for_a_single_text_task_fails_before_training(
    data_dir, tmp_path):
  pairs = tmp_path / "pairs.tsv"
  testing.write_tsv(pairs, [(0, "a b", "c")],
                    header=("label", "text_a", "text_b"))
  result = _train(f"--data={data_dir}", f"--model_dir={tmp_path / 'm'}",
                  "--preset=test_tiny", f"--distill_data={pairs}")
  assert result.returncode != 0
  assert (f"{pairs}: --distill_data holds sentence pairs, but the task has "
          "single texts") in result.stderr
  assert not (tmp_path / "m" / "model.weights.h5").exists()  # failed fast


def test_plain_text_distill_data_for_a_pair_task_is_refused(tmp_path):
  from fastbert_tf.training import inputs  # pylint: disable=g-import-not-at-top
  from fastbert_tf.training.config import TrainConfig  # pylint: disable=g-import-not-at-top
  lines = tmp_path / "texts.txt"
  lines.write_text("one text\n", encoding="utf-8")
  pairs = sources.TextDataset(texts_a=("a",), texts_b=("b",), labels=[0],
                              source="pairs")
  cfg = TrainConfig(model_dir=str(tmp_path), distill_data=str(lines))
  with pytest.raises(sources.DataError,
                     match="holds single texts, but the task has sentence pairs"):
    inputs.load_distill_data(cfg, pairs)


def test_missing_model_dir_is_a_usage_error():
  result = _train("--data=quickstart")
  assert result.returncode != 0
  assert "--model_dir" in result.stderr


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
