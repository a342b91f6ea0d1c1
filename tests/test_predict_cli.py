"""fastbert_tf.predict: files of texts in, one answer per line out, totals;
the line formats of fastbert_tf.predictor.records."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastbert_tf import Predictor
from fastbert_tf.data.rows import DataError
from fastbert_tf.data.rows import RowError
from fastbert_tf.predictor import records as pio
from fastbert_tf.predictor import stream
from fastbert_tf.testing import saved

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = list(saved.TEXTS)
NAMES = ("neg", "neutral", "pos")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model"))
  saved.save_tiny_model(path, names=NAMES)
  return path


@pytest.fixture(scope="module")
def predictor(model_dir):
  return Predictor.load(model_dir, batch_size=4)


def _classify(predictor, path, fmt, out_fmt="jsonl", speed=0.3, skip=False):
  out, log = io.StringIO(), io.StringIO()
  totals, _ = stream.classify_file(predictor, str(path), out, speed, 4, fmt,
                                   out_fmt, skip, log=log)
  return totals, out.getvalue().splitlines(), log.getvalue()


def test_txt_answers_every_line_in_order(predictor, tmp_path):
  (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n\n")
  totals, lines, _ = _classify(predictor, tmp_path / "in.txt", "txt")
  answers = [json.loads(l) for l in lines]
  want = predictor.predict(TEXTS, speed=0.3)
  assert [a["line"] for a in answers] == list(range(1, len(TEXTS) + 1))
  assert [a["label"] for a in answers] == want.label.tolist()
  assert [a["label_name"] for a in answers] == list(want.label_name)
  assert [a["exit_layer"] for a in answers] == want.exit_layer.tolist()
  np.testing.assert_allclose([a["probabilities"] for a in answers],
                             want.probabilities, atol=1e-6)
  assert totals.samples == len(TEXTS) and not totals.labelled
  assert totals.exit_layers == pytest.approx(want.exit_layer.sum())


def test_labelled_tsv_gives_accuracy(predictor, tmp_path):
  want = predictor.predict(TEXTS, speed=0.3).label
  labels = [int(k) if i % 3 else (int(k) + 1) % 3 for i, k in enumerate(want)]
  rows = "".join(f"{l}\t{t}\n" for l, t in zip(labels, TEXTS))
  (tmp_path / "in.tsv").write_text("label\ttext_a\n" + rows)
  totals, lines, _ = _classify(predictor, tmp_path / "in.tsv", "tsv",
                               out_fmt="tsv")
  assert totals.labelled == len(TEXTS)
  assert totals.correct == sum(l == k for l, k in zip(labels, want))
  header = lines[0].split("\t")
  assert header[:3] == ["line", "label", "label_name"]
  assert header[3:6] == ["p_neg", "p_neutral", "p_pos"]
  assert [int(l.split("\t")[0]) for l in lines[1:]] == list(
      range(2, len(TEXTS) + 2))
  summary = totals.summary(2.0, 1.0, predictor.baseline_flops)
  assert f"({totals.correct} of {len(TEXTS)} labelled)" in summary


def test_jsonl_ids_names_and_own_speeds(predictor, tmp_path):
  records = [dict(id=7, text="a b z", speed=1.0),
             dict(text="c", label="pos"), dict(text_a="z z", speed=0.0)]
  (tmp_path / "in.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in records))
  totals, lines, _ = _classify(predictor, tmp_path / "in.jsonl", "jsonl")
  answers = [json.loads(l) for l in lines]
  assert answers[0]["id"] == 7 and answers[0]["exit_layer"] == 1
  assert answers[2]["exit_layer"] == predictor.num_layers
  assert "id" not in answers[1]
  assert totals.labelled == 1


@pytest.mark.parametrize("content,message", [
    ("a\n\nb\n", "in.txt:2: blank line"),
    ("a\n   \nb\n", "in.txt:2: text_a is empty to the tokenizer"),
    # Issue 21, reproduction 3: invisible-only lines were answered.
    ("a\n\u200b\u200b\nb\n", "in.txt:2: text_a is empty to the tokenizer"),
    ("a\nb\n\x01\u200e\u202e\u0301\n", "in.txt:3: text_a is empty to the"),
    (b"a\n\xff\n", "in.txt:2: invalid UTF-8 at byte 0"),
])
def test_bad_line_stops_with_its_line(predictor, tmp_path, content, message):
  path = tmp_path / "in.txt"
  (path.write_bytes if isinstance(content, bytes) else path.write_text)(
      content)
  with pytest.raises(DataError, match=message):
    _classify(predictor, path, "txt")


def test_skip_bad_rows_reports_and_goes_on(predictor, tmp_path):
  (tmp_path / "in.tsv").write_text(
      "label\ttext_a\n1\ta b\n9\tc\nx\n0\tz\n")
  totals, lines, log = _classify(predictor, tmp_path / "in.tsv", "tsv",
                                 skip=True)
  assert [json.loads(l)["line"] for l in lines] == [2, 5]
  assert totals.skipped == 2
  assert "in.tsv:3: label 9 out of range" in log
  assert "in.tsv:4: wrong column count: found 1, expected 2" in log


def test_skip_bad_rows_skips_invisible_only_lines(predictor, tmp_path):
  (tmp_path / "in.jsonl").write_text(
      '{"text": "a"}\n{"text": "\\u200b\\u202e"}\n{"text": "b"}\n')
  totals, lines, log = _classify(predictor, tmp_path / "in.jsonl", "jsonl",
                                 skip=True)
  assert [json.loads(l)["line"] for l in lines] == [1, 3]
  assert totals.skipped == 1
  assert "in.jsonl:2: text is empty to the tokenizer" in log


@pytest.mark.parametrize("fmt,line,message", [
    ("jsonl", "[1]", "expected a json object"),
    ("jsonl", '{"text": "a", "speed": 2}', r"speed must be a number in \[0, 1\]"),
    ("jsonl", '{"text": "a", "text_a": "b"}', "exactly one of the fields"),
    ("jsonl", '{"text": "a", "label": "maybe"}',
     r"label 'maybe' is not a class id or one of \['neg'"),
    ("jsonl", '{"text": "a", "text_b": "b"}', "takes single texts"),
    ("tsv", "1\ta\tb", "wrong column count: found 3, expected 2"),
    ("tsv", "3\ta", "label 3 out of range"),
])
def test_line_parser_names_what_is_wrong(fmt, line, message):
  parser = pio.LineParser(fmt, text_pair=False, num_classes=3,
                          label_names=NAMES)
  if fmt == "tsv":
    parser.header(b"label\ttext_a")
  with pytest.raises(RowError, match=message):
    parser.parse(line, 2)


def test_tsv_header_must_match_the_model():
  with pytest.raises(RowError, match="has text_b, but the model takes single"):
    pio.LineParser("tsv", False, 3).header("text_a\ttext_b")
  with pytest.raises(RowError, match="bad header"):
    pio.LineParser("tsv", False, 3).header("sentence")
  parser = pio.LineParser("tsv", True, 3)
  parser.header("text_a\ttext_b")
  assert parser.parse("x\ty") == pio.Record(0, "x", "y")


def test_formats_from_extensions():
  assert pio.format_of("a/b.TSV") == "tsv"
  assert pio.format_of("x.jsonl") == "jsonl"
  assert pio.format_of("-", "txt") == "txt"
  with pytest.raises(ValueError, match="cannot tell the format"):
    pio.format_of("x.csv")
  with pytest.raises(ValueError, match="cannot tell the format"):
    pio.format_of("x.txt", allowed=pio.OUTPUT_FORMATS)


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  return subprocess.run([sys.executable, "-m", "fastbert_tf.predict", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)


def test_missing_input_and_unknown_format_are_one_line(model_dir, tmp_path):
  """A missing --input is named first (not its extension), and an unknown
  extension is one `error:` line, not a usage message with every flag."""
  missing = _cli(f"--model_dir={model_dir}",
                 f"--input={tmp_path / 'nonexistent'}",
                 f"--output={tmp_path / 'a.jsonl'}")
  assert missing.returncode == 1
  lines = [l for l in missing.stderr.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1 and "does not exist" in lines[0], missing.stderr[-800:]
  (tmp_path / "texts.csv").write_text("a\n")
  csv = _cli(f"--model_dir={model_dir}", f"--input={tmp_path / 'texts.csv'}",
             f"--output={tmp_path / 'a.jsonl'}")
  assert csv.returncode == 1
  assert "cannot tell the format" in csv.stderr
  assert "--batch_size" not in csv.stderr, "the whole usage text was printed"


def test_command_line_end_to_end(model_dir, tmp_path):
  (tmp_path / "in.tsv").write_text(
      "label\ttext_a\n" + "".join(f"{i % 3}\t{t}\n"
                                  for i, t in enumerate(TEXTS)) +
      "1\t \n")
  out = tmp_path / "out.jsonl"
  bad = _cli(f"--model_dir={model_dir}", f"--input={tmp_path / 'in.tsv'}",
             f"--output={out}", "--speed=0.3", "--batch_size=4")
  assert bad.returncode == 1
  assert f"error: {tmp_path / 'in.tsv'}:{len(TEXTS) + 2}: text_a is empty" in (
      bad.stderr)
  assert not out.exists() and (tmp_path / "out.jsonl.partial").exists()
  # No C++ ERROR line about CUDA on a machine without a GPU driver.
  if not os.path.exists("/proc/driver/nvidia/version"):
    assert "cuInit" not in bad.stderr and "E0000" not in bad.stderr
  good = _cli(f"--model_dir={model_dir}", f"--input={tmp_path / 'in.tsv'}",
              f"--output={out}", "--speed=0.3", "--batch_size=4",
              "--skip_bad_rows")
  assert good.returncode == 0, good.stderr
  assert len(out.read_text().splitlines()) == len(TEXTS)
  assert f"{len(TEXTS)} samples in" in good.stdout
  assert "samples/s" in good.stdout and "speedup" in good.stdout
  assert f"of {len(TEXTS)} labelled)" in good.stdout
  assert "skipped 1 bad lines" in good.stdout


def test_help_lists_the_project_flags_first():
  out = _cli("--help")  # absl exits 1 after --help
  help_text = out.stdout + out.stderr
  assert "Classify a file of texts with early exit." in help_text
  for flag in ("--model_dir", "--input", "--output", "--speed",
               "--skip_bad_rows"):
    assert flag in help_text, flag
  assert help_text.index("--model_dir") < help_text.find("--helpfull")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
