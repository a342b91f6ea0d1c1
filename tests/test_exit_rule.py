"""The one exit-decision kernel (criteria.students_run / exits /
advance_state) and the three paths that call it: the batched loop, the
one-text XLA program and the sweep, each held against the numpy oracle in
fastbert_tf/testing/exit_oracle.py, so a mutation of the kernel fails all
three."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from fastbert_tf import testing
from fastbert_tf.inference import criteria
from fastbert_tf.inference import early_exit
from fastbert_tf.inference import flops as flops_lib
from fastbert_tf.inference import single_text
from fastbert_tf.inference import sweep
from fastbert_tf.testing import exit_oracle

SEQ = 12
SPEEDS = (0.0, 0.2, 0.5, 0.8, 1.0)
VOCAB = len(testing.TINY_VOCAB)


@pytest.fixture(scope="module")
def model():
  return testing.tiny_model(seed=5, sharpen=6.0, dropout=0.0)


@pytest.fixture(scope="module")
def inputs():
  return testing.random_inputs(24, SEQ, VOCAB, seed=9)


def _table(model):
  return flops_lib.flops_table(model.get_config(), SEQ)


def _all_scores(model, inputs, criterion):
  """float32 [n, L]: every classifier's score, every classifier run."""
  log_probs = tf.nn.log_softmax(model(inputs, training=False))
  return criterion.scores(log_probs).numpy()


def test_kernel_decisions():
  # Strictly below the speed exits; equal does not (the paper's `<`).
  np.testing.assert_array_equal(
      criteria.exits(tf.constant([0.05, 0.1, 0.5]), 0.1, False).numpy(),
      [True, False, False])
  # Nothing leaves a student at speed 0, not even a score of exactly 0...
  assert not criteria.exits(tf.constant([0.0]), 0.0, False).numpy()[0]
  # ... and the teacher always answers.
  assert criteria.exits(tf.constant([0.99]), 0.0, True).numpy()[0]
  np.testing.assert_array_equal(
      criteria.students_run(tf.constant([0.0, 1e-6, 1.0])).numpy(),
      [False, True, True])
  # Per-sample speeds: the state moves where the students run, stays fresh
  # at speed 0.
  new, old = (tf.constant([5, 6]),), (tf.constant([-1, -1]),)
  got = criteria.advance_state(new, old, tf.constant([0.0, 0.3]))
  np.testing.assert_array_equal(got[0].numpy(), [-1, 6])


@pytest.mark.parametrize("name", ["entropy", "patience"])
def test_loop_and_xla_program_follow_the_oracle(model, inputs, name):
  criterion = criteria.ExitCriterion(name)
  table = _table(model)
  scores = _all_scores(model, inputs, criterion)
  loop = early_exit.compiled_early_exit(model, table, criterion)
  one = single_text.single_text_early_exit(model, table, criterion,
                                           buckets=(SEQ,))
  seen = set()
  for speed in SPEEDS:
    want = exit_oracle.exit_layers(scores, speed)
    flops = exit_oracle.sample_flops(want, speed, table.cumulative(),
                                     table.baseline)
    got = loop(inputs["token_ids"], inputs["segment_ids"],
               inputs["padding_mask"], tf.constant(speed))
    np.testing.assert_array_equal(got["exit_layer"].numpy(), want,
                                  err_msg=f"loop, speed {speed}")
    np.testing.assert_allclose(got["flops"].numpy(), flops, rtol=1e-6)
    for i in range(len(want)):
      row = {k: v[i:i + 1] for k, v in inputs.items()}
      out = one(row["token_ids"], row["segment_ids"], row["padding_mask"],
                tf.constant(speed))
      assert int(out["exit_layer"][0]) == want[i], ("xla", speed, i)
      assert float(out["flops"][0]) == pytest.approx(flops[i], rel=1e-6)
    seen |= {(speed > 0, int(e)) for e in want}
  # Not trivial: the texts leave at several layers, some at the teacher
  # although students may answer.
  assert len({e for run, e in seen if run}) >= 2
  assert (True, model.num_layers) in seen


@pytest.mark.parametrize("name", criteria.NAMES)
def test_sweep_follows_the_oracle(model, inputs, name):
  criterion = criteria.ExitCriterion(name)
  table = _table(model)
  scores = _all_scores(model, inputs, criterion)
  one_pass = sweep.OnePass(scores, np.zeros_like(scores, np.int32),
                           np.zeros(len(scores), np.int32))
  for speed, record in zip(SPEEDS, sweep.derive(one_pass, SPEEDS, table)):
    want = exit_oracle.exit_layers(scores, speed)
    np.testing.assert_array_equal(sweep.exit_layers(one_pass, speed), want)
    assert record["mean_flops"] == pytest.approx(np.mean(
        exit_oracle.sample_flops(want, speed, table.cumulative(),
                                 table.baseline)), rel=1e-9)


class _Counting:
  """Counts, in a variable (so compiled graphs and XLA count too), how often
  a classifier's call runs."""

  def __init__(self, classifier):
    self.count = tf.Variable(0)
    self._call = classifier.call

    def call(*args, **kwargs):
      self.count.assign_add(1)
      return self._call(*args, **kwargs)
    classifier.call = call


@pytest.mark.parametrize("path", ["loop", "xla"])
def test_students_are_skipped_at_speed_zero(path, inputs):
  model = testing.tiny_model(seed=5, sharpen=6.0, dropout=0.0)
  student = _Counting(model.classifiers[0])
  teacher = _Counting(model.classifiers[-1])
  table = _table(model)
  if path == "loop":
    run = early_exit.compiled_early_exit(model, table)
  else:
    run = single_text.single_text_early_exit(model, table, buckets=(SEQ,))
  row = {k: v[:1] for k, v in inputs.items()}
  args = (row["token_ids"], row["segment_ids"], row["padding_mask"])
  run(*args, tf.constant(0.0))
  assert int(teacher.count.numpy()) == 1
  assert int(student.count.numpy()) == 0, "a student ran at speed 0"
  run(*args, tf.constant(0.5))
  assert int(student.count.numpy()) == 1, "no student ran at speed 0.5"


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
