"""Server-side batching for the local server: concurrent requests to one
signature of one version are merged into one run of the graph.

It follows TF Serving's BatchingSession: a task waits at most
`batch_timeout_micros` for others, a batch holds at most `max_batch_size`
examples, `num_batch_threads` batches run at once, and a full queue answers
UNAVAILABLE. Unlike TF Serving it pads id inputs of different lengths with
the right values (0: [PAD] id, segment 0, mask 0) and broadcasts a scalar
`speed` to the task's rows before concatenating, so every request keeps its
own speed and its own answers. A request larger than max_batch_size runs
alone, as does every task of a batch whose merged run failed (so one bad
request cannot fail the others).
"""

import collections
import dataclasses
import threading
import time

import grpc
import numpy as np

from fastbert_tf.serving import protos

SPEED = "speed"
ID_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
  """TF Serving's batching parameters, same names and meaning.

  Attributes:
    max_batch_size: int, most examples in one merged run.
    batch_timeout_micros: int, longest wait for a batch to fill.
    num_batch_threads: int, merged runs in flight at once.
    max_enqueued_batches: int, queue capacity in batches; a request that
      finds it full gets UNAVAILABLE (retry later).
  """
  max_batch_size: int = 32
  batch_timeout_micros: int = 2000
  num_batch_threads: int = 2
  max_enqueued_batches: int = 100

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      least = 0 if field.name == "batch_timeout_micros" else 1
      if isinstance(value, bool) or not isinstance(value, int) or (
          value < least):
        raise ValueError(f"--{field.name}={value}: out of range for "
                         f"batching; expected an integer >= {least}")


class _Task:

  def __init__(self, arrays):
    self.arrays = arrays
    self.rows = len(next(v for k, v in arrays.items() if k != SPEED))
    self.enqueued = time.monotonic()
    self.done = threading.Event()
    self.outputs = None
    self.error = None


class Batcher:
  """Merges concurrent calls of `function` (numpy dict in, numpy dict of
  per-example outputs out).

  Args:
    function: callable(arrays) -> {name: np.ndarray [rows, ...]}.
    options: BatchingOptions.
    name: str, for thread names.
  """

  def __init__(self, function, options, name="batcher"):
    self._function = function
    self._options = options
    self._queue = collections.deque()
    self._rows = 0
    self._cond = threading.Condition()
    self._closed = False
    self.batch_sizes = collections.Counter()  # examples per merged run
    self._threads = [
        threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
        for i in range(options.num_batch_threads)]
    for thread in self._threads:
      thread.start()

  def run(self, arrays):
    """Runs `arrays` (one request) in some batch; blocks until answered."""
    task = _Task(arrays)
    if task.rows > self._options.max_batch_size:
      return self._function(arrays)  # too big to share a batch
    capacity = self._options.max_enqueued_batches * self._options.max_batch_size
    with self._cond:
      closed = self._closed
      if not closed:
        if self._rows + task.rows > capacity:
          raise protos.ServingError(
              grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to "
              f"which this task was submitted is full ({self._rows:,} "
              "examples waiting); retry later")
        self._queue.append(task)
        self._rows += task.rows
        self._cond.notify_all()
    if closed:
      # The version is being unloaded; a request that resolved it just
      # before still gets its answer.
      return self._function(arrays)
    task.done.wait()
    if task.error is not None:
      raise task.error
    return task.outputs

  def close(self):
    """Answers what is queued, then stops the threads."""
    with self._cond:
      self._closed = True
      self._cond.notify_all()
    for thread in self._threads:
      thread.join()

  def _next_batch(self):
    """Waits for a batch to fill or time out; [] once closed and drained."""
    timeout = self._options.batch_timeout_micros / 1e6
    with self._cond:
      while True:
        if not self._queue:
          if self._closed:
            return []
          self._cond.wait()
          continue
        left = self._queue[0].enqueued + timeout - time.monotonic()
        if (self._rows >= self._options.max_batch_size or left <= 0 or
            self._closed):
          break
        self._cond.wait(left)
      batch, rows = [], 0
      while self._queue and (
          not batch or
          rows + self._queue[0].rows <= self._options.max_batch_size):
        task = self._queue.popleft()
        batch.append(task)
        rows += task.rows
      self._rows -= rows
      return batch

  def _loop(self):
    while True:
      batch = self._next_batch()
      if not batch:
        return
      self.batch_sizes[sum(t.rows for t in batch)] += 1
      try:
        merged = self._function(merge([t.arrays for t in batch]))
        for task, outputs in zip(batch, split(merged,
                                              [t.rows for t in batch])):
          task.outputs = outputs
      except Exception:  # pylint: disable=broad-except
        # Each alone: the failure belongs to one request, the rest succeed.
        for task in batch:
          try:
            task.outputs = self._function(task.arrays)
          except Exception as e:  # pylint: disable=broad-except
            task.error = e
      for task in batch:
        task.done.set()


def merge(requests):
  """Concatenates requests' inputs along dimension 0.

  Args:
    requests: list of {name: np.ndarray}: text inputs [rows], id inputs
      int32 [rows, seq] (seq may differ), `speed` float32 scalar or [rows].

  Returns:
    {name: np.ndarray}: one input per name, `speed` float32 [total rows],
    id inputs zero-padded on the right to the widest request.
  """
  rows = [len(next(v for k, v in r.items() if k != SPEED)) for r in requests]
  merged = {SPEED: np.concatenate([
      np.broadcast_to(np.asarray(r[SPEED], np.float32).reshape(-1), [n])
      for r, n in zip(requests, rows)])}
  for name in requests[0]:
    if name == SPEED:
      continue
    parts = [r[name] for r in requests]
    if name in ID_INPUTS:
      width = max(p.shape[1] for p in parts)
      parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])]) for p in parts]
    merged[name] = np.concatenate(parts)
  return merged


def split(outputs, rows):
  """Per-request outputs from a merged run's {name: [sum(rows), ...]}."""
  bounds = np.cumsum(rows)[:-1]
  pieces = {k: np.split(v, bounds) for k, v in outputs.items()}
  return [{k: v[i] for k, v in pieces.items()} for i in range(len(rows))]
