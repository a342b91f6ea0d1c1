"""The pieces of bench/serving_load.py: versions, the request pool and its
reference answers, the server subprocess, the client threads."""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np

from bench import serving_fault_table
from bench.serving_fault_kinds import request
from fastbert_tf.serving import protos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PB = protos.load()
MODEL = "fastbert"
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
         list("abcdefghijklmnopqrstuvwxyz") +
         [chr(c) for c in range(0x4e00, 0x4e00 + 200)])
SEQ = 64
SPEEDS = (0.0, 0.1, 0.5, 0.8)
# Quick to build, no 17 MiB payloads: the bad requests sent under load.
BAD = [row[1] for row in serving_fault_table._ROWS  # pylint: disable=protected-access
       if not callable(row[1])]


def export_versions(staging):
  """Versions 1, 2 and 4 (other seeds) of the quickstart architecture,
  in --dispatch=tensor_array exports."""
  from fastbert_tf import testing  # pylint: disable=g-import-not-at-top
  from fastbert_tf.data.tokenizer import TextEncoder  # pylint: disable=g-import-not-at-top
  from fastbert_tf.export import exporter  # pylint: disable=g-import-not-at-top
  encoder = TextEncoder(VOCAB, SEQ)
  for version, seed in ((1, 1), (2, 2), (4, 4)):
    model = testing.tiny_model(
        seed=seed, sharpen=6.0, dropout=0.0, vocabulary_size=len(VOCAB),
        num_classes=2, num_layers=4, num_heads=4, hidden_dim=128,
        intermediate_dim=512, max_sequence_length=128,
        classifier_hidden_dim=32, classifier_num_heads=2)
    # tensor_array: the dispatch export/README recommends for TF Serving;
    # it also instantiates (loads and warms up) about twice as fast.
    exporter.export_saved_model(model, encoder, staging, version=version,
                              dispatch="tensor_array")


def request_pool(seed, size=64):
  """Good requests: 1-8 texts each, a scalar or per-example speed."""
  rng = np.random.default_rng(seed)
  chars = VOCAB[5:]
  pool = []
  for i in range(size):
    rows = int(rng.integers(1, 9))
    texts = np.array(["".join(rng.choice(chars, int(rng.integers(3, 60))))
                      for _ in range(rows)], object)
    speed = (np.float32(rng.choice(SPEEDS)) if i % 2 else
             rng.choice(SPEEDS, rows).astype(np.float32))
    inputs = {"text": texts, "speed": speed}
    pool.append((inputs, request(inputs)))
  return pool


def references(staging, pool, versions):
  """{version: [outputs of each pool request]} from the SavedModels."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
  refs = {}
  for version in versions:
    signature = tf.saved_model.load(os.path.join(
        staging, str(version))).signatures["serving_default"]
    refs[version] = [
        {k: v.numpy() for k, v in signature(
            text=tf.constant(inputs["text"]),
            speed=tf.constant(inputs["speed"])).items()}
        for inputs, _ in pool]
  return refs


def rss_mb(pid):
  with open(f"/proc/{pid}/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def start_server(base, batching, access_log):
  args = [sys.executable, "-m", "fastbert_tf.serving.server",
          f"--model_base_path={base}", f"--model_name={MODEL}", "--port=0",
          "--file_system_poll_wait_seconds=1", f"--access_log={access_log}"]
  if batching:
    args += ["--enable_batching", "--max_batch_size=32",
             "--batch_timeout_micros=2000", "--num_batch_threads=2"]
  log = open(access_log + ".server", "w", encoding="utf-8")  # pylint: disable=consider-using-with
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                          text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  ready, _, _ = select.select([proc.stdout], [], [], 600)
  line = proc.stdout.readline() if ready else ""
  match = re.fullmatch(r"serving \S+ version \d+ at (\S+)\n", line)
  if not match:
    proc.kill()
    raise RuntimeError(f"server did not start: {line!r}")
  return proc, match.group(1)


def drop(staging, base, spec):
  """Deploys into the base path, as a copy under a hidden name then a
  rename. spec: "N" a whole version N; "Nh" version N half copied
  (saved_model.pb and assets.extra, no variables/); "Nc" completes a
  half-copied N (adds variables/); "Nb" a broken N (saved_model.pb is not
  a SavedModel). Returns the version number."""
  version, kind = int(spec.rstrip("hcb")), spec[len(spec.rstrip("hcb")):]
  source = os.path.join(staging, str(version))
  target = os.path.join(base, str(version))
  hidden = os.path.join(base, f".copy-{spec}")
  if kind == "c":
    shutil.copytree(os.path.join(source, "variables"), hidden)
    os.rename(hidden, os.path.join(target, "variables"))
    return version
  if kind == "b":
    os.makedirs(hidden)
    with open(os.path.join(hidden, "saved_model.pb"), "wb") as f:
      f.write(b"not a SavedModel")
  else:
    shutil.copytree(source, hidden, ignore=lambda d, names: [
        n for n in names if kind == "h" and n == "variables"])
  os.rename(hidden, target)
  return version


class _Stats:

  def __init__(self):
    self.lock = threading.Lock()
    self.latencies, self.examples = [], 0
    self.counts = dict(good_ok=0, good_failed=0, wrong_answers=0,
                       bad_refused=0, bad_answered_ok=0)
    self.by_version, self.failures = {}, []
    self.first_answer = {}  # version -> time.monotonic() of its first answer


def _client(channel, pool, refs, bad_fraction, stop, stats, seed):
  rng = np.random.default_rng(seed)
  predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
  while not stop.is_set():
    bad = rng.random() < bad_fraction
    index = int(rng.integers(len(BAD if bad else pool)))
    data = BAD[index] if bad else pool[index][1]
    start = time.perf_counter()
    try:
      body, error = predict(data, timeout=60.0), None
    except grpc.RpcError as e:
      body, error = None, f"{e.code().name}: {e.details()}"
    elapsed = time.perf_counter() - start
    with stats.lock:
      if bad:
        stats.counts["bad_answered_ok" if error is None else "bad_refused"] += 1
        continue
      if error is not None:
        stats.counts["good_failed"] += 1
        stats.failures.append(error)
        continue
      response = PB.predict_pb2.PredictResponse.FromString(body)
      version = response.model_spec.version.value
      stats.by_version[version] = stats.by_version.get(version, 0) + 1
      stats.first_answer.setdefault(version, time.monotonic())
      want = refs.get(version, [None] * len(pool))[index]
      got = {k: protos.make_ndarray(v, k) for k, v in response.outputs.items()}
      right = want is not None and np.array_equal(
          got["label"], want["label"]) and np.array_equal(
              got["exit_layer"], want["exit_layer"]) and np.allclose(
                  got["probabilities"], want["probabilities"], atol=1e-5)
      stats.counts["good_ok" if right else "wrong_answers"] += 1
      stats.latencies.append(elapsed)
      stats.examples += len(pool[index][0]["text"])


def run_load(base, staging, pool, refs, batching, clients, seconds,
             bad_fraction, drops, access_log):
  """One timed run; returns the measurements as a dict."""
  proc, address = start_server(base, batching, access_log)
  try:
    time.sleep(2)
    rss = [rss_mb(proc.pid)]
    start_rss = rss[0]
    stats, stop = _Stats(), threading.Event()
    channel = grpc.insecure_channel(address)
    threads = [threading.Thread(target=_client, args=(
        channel, pool, refs, bad_fraction, stop, stats, i)) for i in
               range(clients)]
    start = time.monotonic()
    for thread in threads:
      thread.start()
    pending, dropped = sorted(drops), {}
    while time.monotonic() - start < seconds:
      if pending and time.monotonic() - start >= pending[0][0]:
        version = drop(staging, base, pending.pop(0)[1])
        dropped[version] = time.monotonic()  # the last drop of it counts
      rss.append(rss_mb(proc.pid))
      time.sleep(0.5)
    stop.set()
    for thread in threads:
      thread.join()
    wall = time.monotonic() - start
    channel.close()
    time.sleep(5)
    end_rss = rss_mb(proc.pid)
  finally:
    proc.send_signal(signal.SIGTERM)
    try:
      proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      proc.kill()
  with open(access_log + ".server", encoding="utf-8") as f:
    server_log = f.read()
  lat = np.array(stats.latencies) * 1e3
  return dict(
      **stats.counts, wall_seconds=round(wall, 1),
      good_requests_per_second=len(lat) / wall,
      examples_per_second=stats.examples / wall,
      p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
      p99_ms=float(np.percentile(lat, 99)) if lat.size else None,
      answers_by_version={str(k): v for k, v in sorted(stats.by_version.items())},
      # Seconds from a version's drop to its first answer: load + warmup
      # in the background, under this load.
      switch_seconds={str(v): round(stats.first_answer[v] - t, 1)
                      for v, t in dropped.items() if v in stats.first_answer},
      rss_start_mb=start_rss, rss_peak_mb=max(rss), rss_end_mb=end_rss,
      load_failures_logged=len(re.findall(r"failed to load", server_log)),
      failure_samples=stats.failures[:5])
