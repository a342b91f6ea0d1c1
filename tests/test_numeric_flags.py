"""The numeric flags of every command: zero, negative, huge, NaN, inf and
out-of-range values are refused in the library, with one line naming the
flag (`--flag=value: ...; expected ...`), before any work (issue 21's
numeric class; bench/numeric_fault_kinds.py runs them through the command
lines). Nothing here trains."""

import math
import subprocess
import sys

import pytest

from fastbert_tf import testing
from fastbert_tf.data import pipeline
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.errors import ConfigError
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.inference import sweep
from fastbert_tf.models import presets
from fastbert_tf.reporting import report
from fastbert_tf.serving import batching
from fastbert_tf.serving import server
from fastbert_tf.serving import validation
from fastbert_tf.training import build
from fastbert_tf.training import inputs
from fastbert_tf.training.config import TrainConfig

NAN, INF = float("nan"), float("inf")
HUGE = 10**12


@pytest.mark.parametrize("field,value", [
    ("batch_size", 0), ("batch_size", -1), ("eval_batch_size", 0),
    ("vocab_size", 0), ("vocab_size", 5), ("max_seq_length", 2), ("max_train_samples", -1),
    ("length_group", -1), ("pad_to_multiple_of", -1), ("num_gpus", -1),
    ("checkpoint_every_steps", -1), ("num_classes", -1), ("num_classes", 1),
    ("seed", -1), ("seed", 2**32), ("top_k", 0),
    ("finetune_epochs", 0), ("finetune_epochs", -1), ("distill_epochs", 0),
    ("finetune_epochs", HUGE), ("distill_epochs", HUGE),
    ("finetune_learning_rate", 0.0), ("finetune_learning_rate", NAN),
    ("finetune_learning_rate", INF), ("distill_learning_rate", 1e12),
    ("warmup_fraction", NAN), ("warmup_fraction", 1.5),
    ("weight_decay", NAN), ("weight_decay", INF), ("weight_decay", -1.0),
    ("weight_decay", 1e12), ("distill_temperature", 0.0),
    ("distill_temperature", INF), ("distill_temperature", 1e12),
    ("batch_size", True), ("seed", 1.5),
])
def test_train_config_refuses_a_number_out_of_range(field, value):
  with pytest.raises(ConfigError) as e:
    TrainConfig(model_dir="m", **{field: value})
  assert str(e.value).startswith(f"--{field}=")
  assert "expected" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("speeds", [(0.0, NAN), (1.5,), (-0.1,), (INF,)])
def test_train_config_refuses_speeds_outside_0_1(speeds):
  with pytest.raises(ConfigError, match=r"^--speeds=.*outside \[0, 1\]"):
    TrainConfig(model_dir="m", speeds=speeds)


def test_train_config_epochs_of_a_phase_that_does_not_run_may_be_0():
  TrainConfig(model_dir="m", phase="finetune", distill_epochs=0)
  TrainConfig(model_dir="m", phase="distill", finetune_epochs=0)
  with pytest.raises(ConfigError, match="--phase=finetune runs this phase"):
    TrainConfig(model_dir="m", phase="finetune", finetune_epochs=0)


def test_topk_criterion_needs_k_of_2_or_more():
  TrainConfig(model_dir="m", top_k=1)  # ignored by the entropy criterion
  with pytest.raises(ConfigError, match="^--top_k=1: "):
    TrainConfig(model_dir="m", top_k=1, exit_criterion="topk_entropy")


def test_edges_inside_the_ranges_are_accepted():
  TrainConfig(model_dir="m", seed=2**32 - 1, warmup_fraction=0.0,
              weight_decay=0.0, finetune_learning_rate=1.0,
              distill_temperature=100.0, speeds=(0.0, 1.0), num_classes=3,
              max_train_samples=HUGE, checkpoint_every_steps=HUGE)


@pytest.fixture(name="data_dir", scope="module")
def _data_dir(tmp_path_factory):
  return testing.write_letter_task(tmp_path_factory.mktemp("data"),
                                   train=48, dev=16, test=16)


def _load(data_dir, **kwargs):
  return inputs.load(TrainConfig(model_dir="m", data=str(data_dir),
                                 **kwargs))


def test_batch_size_larger_than_the_training_data_is_refused(data_dir):
  assert len(_load(data_dir, batch_size=48).splits["train"]) == 48
  with pytest.raises(ConfigError, match=r"^--batch_size=49: larger than the "
                     r"48 examples phase 1 trains on .*expected at most 48"):
    _load(data_dir, batch_size=49)
  with pytest.raises(ConfigError, match="--batch_size=20: larger than the 16 "
                     "examples phase 2"):
    _load(data_dir, batch_size=20, phase="distill",
          distill_data=str(data_dir / "dev.tsv"))
  _load(data_dir, batch_size=10**12, phase="calibrate")  # trains nothing


def test_num_classes_beyond_the_training_examples_is_refused(data_dir):
  # 10**12 classes would size the label counts (and the model) first.
  with pytest.raises(ConfigError, match=r"^--num_classes=1000000000000: more "
                     "classes than the 48 training examples"):
    _load(data_dir, num_classes=HUGE)
  assert _load(data_dir, num_classes=3).label_set.num_classes == 3


def test_top_k_beyond_the_classes_is_refused(data_dir):
  with pytest.raises(ConfigError, match=r"^--top_k=3: more than the task's 2 "
                     "classes"):
    _load(data_dir, top_k=3, exit_criterion="topk_entropy")


@pytest.mark.parametrize("weights", [("nan", "1"), ("inf", "1"), ("0", "1"),
                                     ("-1", "1"), ("1",)])
def test_class_weights_must_be_finite_and_positive(data_dir, weights):
  run = _load(data_dir)
  cfg = TrainConfig(model_dir="m", class_weights=weights)
  with pytest.raises(ValueError, match=r"^--class_weights=.*expected 2 "
                     "finite positive numbers"):
    inputs.class_weights(cfg, run.label_set, run.splits["train"])


def test_a_huge_length_group_is_the_whole_data(data_dir):
  """--length_group=10**12 is valid (sort the whole data by length) and
  must not size a tf.data buffer by it (it segfaulted the training)."""
  train = _load(data_dir).splits["train"]
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  whole = [b[1].numpy().tolist() for b in pipeline.make_dataset(
      train, encoder, 8, length_group=6, shuffle=True, seed=1)]
  huge = [b[1].numpy().tolist() for b in pipeline.make_dataset(
      train, encoder, 8, length_group=10**12, shuffle=True, seed=1)]
  assert huge == whole and sum(map(len, huge)) == 48


def test_a_huge_pad_multiple_pads_to_the_max_length():
  """--pad_to_multiple_of=10**12 is documented as capped at
  --max_seq_length; it overflowed int32 in the graph instead."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  features = encoder(tf.constant(["a b", "c"]))
  for multiple in (16, 10**12):
    padded = pipeline.pad_features((features,), multiple, encoder)
    assert padded["token_ids"].shape == (2, 16)


def test_xla_buckets_name_the_flag():
  from fastbert_tf.inference import single_text  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=r"^--xla_buckets=0,16: bucket lengths "
                     "must be >= 1"):
    single_text.buckets_for(16, [0, 16])
  assert single_text.buckets_for(16, [8, HUGE]) == (8, 16)  # dropped


def test_max_seq_length_beyond_the_position_table_is_refused():
  cfg = TrainConfig(model_dir="m", preset="test_tiny", max_seq_length=HUGE)
  with pytest.raises(ConfigError, match=r"^--max_seq_length=1000000000000: "
                     r"exceeds .*expected at most 32"):
    build.base_architecture(cfg, None)


@pytest.mark.parametrize("kwargs,flag", [
    (dict(batch_size=0), "batch_size"), (dict(max_samples=-1), "max_samples"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=1, exit_criterion="topk_entropy"), "top_k"),
    (dict(target_accuracy_drop=NAN), "target_accuracy_drop"),
    (dict(target_accuracy_drop=-1.0), "target_accuracy_drop"),
    (dict(target_accuracy_drop=INF), "target_accuracy_drop"),
    (dict(target_speedup=NAN), "target_speedup"),
    (dict(target_speedup=INF), "target_speedup"),
    (dict(target_speedup=0.0), "target_speedup"),
    (dict(uncertainty_layers=(0,)), "uncertainty_layers"),
    (dict(speeds=(NAN,)), "speeds"), (dict(histogram_speeds=(2.0,)),
                                      "histogram_speeds"),
])
def test_sweep_config_refuses(kwargs, flag):
  with pytest.raises(ConfigError, match=f"^--{flag}="):
    report.SweepConfig(**{"model_dir": "m", "output_dir": "o",
                          "speeds": (0.0,), **kwargs})


def test_sweep_grid_too_fine_is_refused_before_it_is_built():
  assert len(sweep.parse_speeds("0:1:0.0001")) == sweep.MAX_SPEEDS
  with pytest.raises(sweep.SweepError, match="1,000,000,000,001 speeds"):
    sweep.parse_speeds("0:1:1e-12")
  for text in ("0:1:0", "0:1:-0.1", "0:nan:0.1", "nan", "0,inf"):
    with pytest.raises(sweep.SweepError):
      sweep.parse_speeds(text)


@pytest.mark.parametrize("seq_len,num_classes,needle", [
    (0, 2, "--max_seq_length=0"), (2, 2, "--max_seq_length=2"),
    (513, 2, "--max_seq_length=513"), (HUGE, 2, "--max_seq_length="),
    (128, 1, "--num_classes=1"), (128, 0, "--num_classes=0"),
    (128, -1, "--num_classes=-1"),
])
def test_flops_refuses_lengths_and_classes_a_model_cannot_have(
    seq_len, num_classes, needle):
  config = dict(presets.get_preset("bert_base"), num_classes=num_classes)
  with pytest.raises(ConfigError, match=f"^{needle}"):
    flops_lib.flops_table(config, seq_len)


def test_flops_table_still_defaults_to_the_position_table():
  config = dict(presets.get_preset("bert_base"), num_classes=2)
  assert flops_lib.flops_table(config) == flops_lib.flops_table(config, 512)
  assert math.isfinite(flops_lib.flops_table(dict(config, num_classes=HUGE),
                                             128).baseline)


_SERVER_OK = dict(port=0, max_workers=16, max_message_bytes=16 << 20,
                  poll_wait_seconds=1.0)


@pytest.mark.parametrize("changes,flag", [
    (dict(port=-1), "port"), (dict(port=65536), "port"),
    (dict(port=HUGE), "port"), (dict(max_workers=0), "max_workers"),
    (dict(max_message_bytes=0), "max_message_mb"),
    (dict(max_message_bytes=-1 << 20), "max_message_mb"),
    (dict(max_message_bytes=HUGE << 20), "max_message_mb"),
    (dict(poll_wait_seconds=-1.0), "file_system_poll_wait_seconds"),
    (dict(poll_wait_seconds=NAN), "file_system_poll_wait_seconds"),
    (dict(poll_wait_seconds=INF), "file_system_poll_wait_seconds"),
    (dict(poll_wait_seconds=1e12), "file_system_poll_wait_seconds"),
])
def test_server_options_out_of_range_are_refused(changes, flag):
  with pytest.raises(ConfigError, match=f"^--{flag}="):
    server.check_options(**dict(_SERVER_OK, **changes))


def test_server_batching_options_are_checked_against_the_workers():
  server.check_options(**_SERVER_OK, batching_options=batching.BatchingOptions(
      num_batch_threads=16, max_batch_size=HUGE, max_enqueued_batches=HUGE))
  # 10**12 threads would be started one by one before the first request.
  with pytest.raises(ConfigError, match="^--num_batch_threads=1000000000000"):
    server.check_options(**_SERVER_OK,
                         batching_options=batching.BatchingOptions(
                             num_batch_threads=HUGE))
  with pytest.raises(ConfigError, match="^--batch_timeout_micros="):
    server.check_options(**_SERVER_OK,
                         batching_options=batching.BatchingOptions(
                             batch_timeout_micros=HUGE))


@pytest.mark.parametrize("cls,kwargs,flag", [
    (validation.RequestLimits, dict(max_texts=0), "max_texts_per_request"),
    (validation.RequestLimits, dict(max_text_chars=-1), "max_text_chars"),
    (validation.RequestLimits, dict(max_request_chars=0),
     "max_request_chars"),
    (batching.BatchingOptions, dict(max_batch_size=0), "max_batch_size"),
    (batching.BatchingOptions, dict(batch_timeout_micros=-1),
     "batch_timeout_micros"),
    (batching.BatchingOptions, dict(num_batch_threads=0),
     "num_batch_threads"),
    (batching.BatchingOptions, dict(max_enqueued_batches=-1),
     "max_enqueued_batches"),
])
def test_limits_name_the_server_flag(cls, kwargs, flag):
  with pytest.raises(ValueError, match=f"^--{flag}="):
    cls(**kwargs)


@pytest.mark.parametrize("flag", ["--speed=nan", "--speed=1.5",
                                  "--speed=-1", "--speed=true",
                                  "--batch_size=0"])
def test_predict_refuses_a_bad_number_before_loading(flag, tmp_path):
  # absl's bounds let NaN through: every comparison with it is false.
  result = subprocess.run(
      [sys.executable, "-m", "fastbert_tf.predict", f"--model_dir={tmp_path}",
       f"--input={tmp_path}/in.txt", f"--output={tmp_path}/out.jsonl", flag],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert "Flags parsing error: flag " + flag.split("=")[0] in result.stderr
  assert "Traceback" not in result.stderr


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
