"""Server-side batching: what TF Serving's BatchingSession does to this
export (emulated: there is no tensorflow_model_server here), and the local
server's own batching mode.

The emulation follows tensorflow_serving/batching/batching_session.cc
(MergeInputTensors, SplitOutputTensors) and batching_util.cc (PadTensor):
every input must have a batch dimension; inputs are concatenated along
dimension 0; with pad_variable_length_inputs each input is padded on the
right of every other dimension to the largest size in the batch with the
value of its own first element (`input.flat<T>()(0)`); with
allowed_batch_sizes the batch is filled up with copies of the last task's
first row; outputs are split back by each task's row count.
"""

import sys
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.serving import batching
from fastbert_tf.serving import client as client_lib
from fastbert_tf.serving import server as server_lib

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

MODEL = "fastbert"
VOCAB = len(testing.TINY_VOCAB)
SEQ = 16  # the encoder's max_seq_length: the fixed width clients pad to
DEADLINE = 60.0


def _tf_serving_pad(tensor, max_dims):
  """batching_util.cc PadTensor: pad every dimension but the 0th on the
  right up to max_dims, with the tensor's first element."""
  pad = [(0, 0)] + [(0, m - s) for s, m in zip(tensor.shape[1:], max_dims[1:])]
  if all(after == 0 for _, after in pad):
    return tensor
  return np.pad(tensor, pad, constant_values=tensor.reshape(-1)[0])


def _tf_serving_merge(tasks, pad_variable_length_inputs=True,
                      allowed_batch_sizes=()):
  """batching_session.cc MergeInputTensors over a list of {name: array}."""
  for task in tasks:
    for name, value in task.items():
      if np.ndim(value) == 0:
        raise ValueError("Batching session Run() input tensors must have at "
                         f"least one dimension ({name})")
    if len({len(v) for v in task.values()}) != 1:
      raise ValueError("Batching Run() input tensors must have equal "
                       "0th-dimension size")
  rows = sum(len(next(iter(t.values()))) for t in tasks)
  target = min([b for b in allowed_batch_sizes if b >= rows], default=rows)
  merged = {}
  for name in tasks[0]:
    parts = [np.asarray(t[name]) for t in tasks]
    if pad_variable_length_inputs:
      max_dims = np.max([p.shape for p in parts], axis=0)
      parts = [_tf_serving_pad(p, max_dims) for p in parts]
    parts += [parts[-1][:1]] * (target - rows)
    merged[name] = np.concatenate(parts)
  return merged


def _split(outputs, rows):
  return batching.split({k: v[:sum(rows)] for k, v in outputs.items()}, rows)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  base = str(tmp_path_factory.mktemp("exports"))
  model = testing.tiny_model(seed=5, sharpen=8.0, dropout=0.0)
  path = exporter.export_saved_model(model, TextEncoder(testing.TINY_VOCAB, SEQ),
                                   base)
  return base, tf.saved_model.load(path)


def _run(signature, inputs):
  out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
  return {k: v.numpy() for k, v in out.items()}


def _assert_same(got, want):
  np.testing.assert_array_equal(got["exit_layer"], want["exit_layer"])
  np.testing.assert_array_equal(got["label"], want["label"])
  for key in ("probabilities", "uncertainty", "flops"):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6)


def _id_tasks(widths, seed=0):
  """Requests of different batch sizes, per-example speeds and lengths; each
  [rows, width] with zero padding after its real tokens."""
  rng = np.random.default_rng(seed)
  tasks = []
  for i, width in enumerate(widths):
    rows = 1 + i % 3
    inputs = testing.random_inputs(rows, width, VOCAB, seed=seed + i)
    inputs["speed"] = rng.choice([0.0, 0.3, 0.6, 1.0], rows).astype(np.float32)
    tasks.append(inputs)
  return tasks


@pytest.mark.parametrize("allowed_batch_sizes", [(), (16,)])
def test_tf_serving_batching_of_text_requests_equals_each_alone(
    exported, allowed_batch_sizes):
  signature = exported[1].signatures["serving_default"]
  texts = [["a b z", "q r s t u v"], ["好 书"], ["c", "z z z d e", "w x"]]
  speeds = [[0.0, 1.0], [0.3], [0.6, 1.0, 0.0]]
  tasks = [{"text": np.array(t, object), "speed": np.float32(s)}
           for t, s in zip(texts, speeds)]
  merged = _run(signature, _tf_serving_merge(tasks, True,
                                             allowed_batch_sizes))
  assert len(set(merged["exit_layer"][:6].tolist())) >= 2
  for task, got in zip(tasks, _split(merged, [len(t) for t in texts])):
    _assert_same(got, _run(signature, task))


def test_tf_serving_batching_of_fixed_length_ids_equals_each_alone(exported):
  """Clients that pad predict_ids inputs to the model's max_seq_length
  themselves (zeros after the real tokens) get their own answers."""
  signature = exported[1].signatures["predict_ids"]
  tasks = _id_tasks([SEQ] * 4)
  rows = [len(t["speed"]) for t in tasks]
  merged = _run(signature, _tf_serving_merge(tasks))
  for task, got in zip(tasks, _split(merged, rows)):
    _assert_same(got, _run(signature, task))


def test_tf_serving_padding_of_variable_length_ids_marks_padding_as_tokens(
    exported):
  """With different widths, pad_variable_length_inputs pads padding_mask
  with its first element, 1: padded positions count as real tokens and
  answers change. Hence export/README.md: pad to a fixed length."""
  signature = exported[1].signatures["predict_ids"]
  tasks = _id_tasks([5, 12, 7, 16], seed=3)
  rows = [len(t["speed"]) for t in tasks]
  merged_inputs = _tf_serving_merge(tasks)
  assert (merged_inputs["padding_mask"][:rows[0], 5:] == 1).all()
  assert (merged_inputs["token_ids"][:rows[0], 5:] ==
          tasks[0]["token_ids"][0, 0]).all()  # [CLS], not [PAD]
  merged = _run(signature, merged_inputs)
  changed = [not np.allclose(got["probabilities"],
                             _run(signature, task)["probabilities"],
                             atol=1e-6)
             for task, got in zip(tasks, _split(merged, rows))]
  assert any(changed) and not changed[-1]  # the widest request is intact
  with pytest.raises(ValueError, match="at least one dimension"):
    _tf_serving_merge([dict(tasks[0], speed=np.float32(0.5))])


def _slow_sum(calls):
  def function(arrays):
    calls.append(len(arrays["x"]))
    if (arrays["x"] < 0).any():
      raise ValueError("negative input")
    return {"y": arrays["x"].sum(axis=1) * arrays["speed"]}
  return function


def test_batcher_merges_concurrent_requests_each_keeps_its_answer():
  calls = []
  requests = [{"x": np.full([1 + i % 3, 2], i, np.int32),
               "speed": np.float32(0.5 + i)} for i in range(5)]  # 9 rows
  options = batching.BatchingOptions(max_batch_size=9,
                                     batch_timeout_micros=10_000_000,
                                     num_batch_threads=1)
  batcher = batching.Batcher(_slow_sum(calls), options)
  with futures.ThreadPoolExecutor(5) as pool:
    results = list(pool.map(batcher.run, requests))
  batcher.close()
  assert calls == [9]  # one merged run: full before the (long) timeout
  for request, result in zip(requests, results):
    want = request["x"].sum(axis=1) * request["speed"]
    np.testing.assert_array_equal(result["y"], want)


def test_batcher_failure_belongs_to_the_bad_request_only():
  calls = []
  options = batching.BatchingOptions(max_batch_size=3,
                                     batch_timeout_micros=10_000_000,
                                     num_batch_threads=1)
  batcher = batching.Batcher(_slow_sum(calls), options)
  good = {"x": np.ones([1, 2], np.int32), "speed": np.float32(1.0)}
  bad = {"x": -np.ones([1, 2], np.int32), "speed": np.float32(1.0)}
  with futures.ThreadPoolExecutor(3) as pool:
    outcomes = list(pool.map(
        lambda r: _outcome(batcher.run, r), [good, bad, good]))
  batcher.close()
  assert outcomes[0] == outcomes[2] == [2.0]
  assert isinstance(outcomes[1], ValueError)
  assert calls[0] == 3  # merged first, then each alone


def _outcome(fn, arg):
  try:
    return fn(arg)["y"].tolist()
  except ValueError as e:
    return e


def test_batcher_full_queue_is_unavailable():
  started, release = threading.Event(), threading.Event()

  def blocking(arrays):
    started.set()
    release.wait()
    return {"y": arrays["x"][:, 0]}

  options = batching.BatchingOptions(max_batch_size=1, batch_timeout_micros=0,
                                     num_batch_threads=1,
                                     max_enqueued_batches=1)
  batcher = batching.Batcher(blocking, options)
  one = {"x": np.ones([1, 1], np.int32), "speed": np.float32(0.5)}
  with futures.ThreadPoolExecutor(2) as pool:
    first = pool.submit(batcher.run, one)
    assert started.wait(30)
    second = pool.submit(batcher.run, one)  # waits in the queue
    deadline = 30
    while batcher._rows == 0 and deadline > 0:  # pylint: disable=protected-access
      threading.Event().wait(0.05)
      deadline -= 0.05
    with pytest.raises(client_lib.ServingError,
                       match="batch scheduling queue .* is full") as error:
      batcher.run(one)
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    release.set()
    assert first.result(30)["y"].tolist() == [1]
    assert second.result(30)["y"].tolist() == [1]
  batcher.close()


def test_local_server_batching_mixed_speeds_and_lengths_equal_alone(exported):
  base, loaded = exported
  signature = loaded.signatures["predict_ids"]
  tasks = _id_tasks([4, 16, 9, 12, 6, 16, 3, 11], seed=7)
  rows = sum(len(t["speed"]) for t in tasks)
  options = batching.BatchingOptions(max_batch_size=rows,
                                     batch_timeout_micros=2_000_000,
                                     num_batch_threads=1)
  with server_lib.LocalServer(base, MODEL, warmup=False, poll_wait_seconds=0,
                              batching_options=options) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as client:
      with futures.ThreadPoolExecutor(len(tasks)) as pool:
        results = list(pool.map(lambda t: client.predict_ids(**t), tasks))
    sizes = server.servable._batchers["predict_ids"].batch_sizes  # pylint: disable=protected-access
  assert max(sizes) > 1, sizes  # requests were merged
  for task, got in zip(tasks, results):
    _assert_same(got, _run(signature, task))


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
