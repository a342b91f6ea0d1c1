"""Numeric flags through the command lines (issue 21's numeric class): a
value out of range ends in one `error:` line naming the flag, exit 1, no
traceback and nothing written; a huge value that is valid runs without
allocating for it. Subprocesses that import TensorFlow: the large tier."""

import os
import subprocess
import sys

import pytest

from fastbert_tf.testing import saved

pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=600):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _assert_one_error(result, needle):
  assert result.returncode == 1, result.stderr[-2000:]
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1 and errors[0].startswith(f"error: {needle}"), (
      result.stderr[-2000:])


@pytest.fixture(name="model_dir", scope="module")
def _model_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model"))
  saved.save_tiny_model(path)
  return path


def test_server_refuses_a_thread_count_before_starting_them(tmp_path):
  # 10**12 batch threads were started one by one, forever.
  result = _run("-m", "fastbert_tf.serving.server",
                f"--model_base_path={tmp_path}", "--port=0",
                "--enable_batching", "--num_batch_threads=1000000000000")
  _assert_one_error(result, "--num_batch_threads=1000000000000: ")


@pytest.mark.parametrize("flag", ["--max_texts_per_request=0",
                                  "--file_system_poll_wait_seconds=nan",
                                  "--max_message_mb=1000000000000",
                                  "--port=-1"])
def test_server_refusals_are_one_error_line(tmp_path, flag):
  # A limit below 1 was absl's usage text; NaN and a huge size started.
  _assert_one_error(_run("-m", "fastbert_tf.serving.server",
                         f"--model_base_path={tmp_path}", flag),
                    flag.split("=")[0] + "=")


@pytest.mark.parametrize("flag", ["--target_speedup=nan",
                                  "--target_accuracy_drop=-1",
                                  "--speeds=0:1:1e-12"])
def test_sweep_refusals_are_one_error_line(model_dir, tmp_path, flag):
  result = _run("-m", "fastbert_tf.sweep", f"--model_dir={model_dir}",
                f"--output_dir={tmp_path}/out", flag)
  _assert_one_error(result, flag.split("=")[0])
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("flag", ["--version=-1", f"--version={2**63}",
                                  "--warmup_speed=nan",
                                  "--exit_criterion=topk_entropy"])
def test_export_refuses_a_version_no_server_loads(model_dir, tmp_path, flag):
  extra = ["--top_k=4"] if "topk" in flag else []
  result = _run("export/export_saved_model.py", f"--model_dir={model_dir}",
                f"--export_base={tmp_path}/exports", flag, *extra)
  _assert_one_error(result, (extra or [flag])[0].split("=")[0] + "=")
  assert not os.path.exists(tmp_path / "exports") or not [
      n for n in os.listdir(tmp_path / "exports") if not n.startswith(".")]


def test_predict_with_a_huge_batch_size_answers(model_dir, tmp_path):
  (tmp_path / "in.txt").write_text("a b\nc d\n", encoding="utf-8")
  result = _run("-m", "fastbert_tf.predict", f"--model_dir={model_dir}",
                f"--input={tmp_path}/in.txt",
                f"--output={tmp_path}/out.jsonl",
                "--batch_size=1000000000000")
  assert result.returncode == 0, result.stderr[-2000:]
  assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_flops_refuses_a_length_beyond_the_position_table():
  _assert_one_error(_run("-m", "fastbert_tf.flops", "--preset=bert_base",
                         "--max_seq_length=513"), "--max_seq_length=513: ")


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
