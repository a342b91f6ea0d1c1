"""Training under tf.distribute equals one device, and XLA compiles a
bounded number of programs. Each strategy runs in its own process
(fastbert_tf.testing.distributed_run): logical CPUs and TF_CONFIG must be
set before TensorFlow starts."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 600


def _run(output, *args, env=None):
  return subprocess.Popen(
      [sys.executable, "-m", "fastbert_tf.testing.distributed_run",
       f"--output={output}", *args], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {})))


def _finish(*procs):
  """Waits for every process (bounded); kills them all on any failure."""
  try:
    outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def _weights(path):
  data = np.load(path)
  return [data[f"arr_{i}"] for i in range(len(
      [k for k in data.files if k.startswith("arr_")]))], data


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
  path = tmp_path_factory.mktemp("one") / "weights.npz"
  _finish(_run(path))
  return _weights(path)


def _assert_close(a, b, atol=1e-5):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def test_mirrored_on_two_logical_cpus_equals_one_device(one_device,
                                                        tmp_path):
  path = tmp_path / "mirrored.npz"
  _finish(_run(path, "--strategy=mirrored", "--logical_cpus=2"))
  weights, data = _weights(path)
  assert int(data["replicas"]) == 2
  assert float(data["moved"]) > 1e-2  # the steps did train
  _assert_close(weights, one_device[0])


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_multi_worker_mirrored_two_processes_equal_one_device(one_device,
                                                              tmp_path):
  workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
  procs = []
  for index in range(2):
    config = {"cluster": {"worker": workers},
              "task": {"type": "worker", "index": index}}
    procs.append(_run(tmp_path / f"worker{index}.npz",
                      "--strategy=multi_worker_mirrored",
                      f"--state_dir={tmp_path / 'state'}",
                      env={"TF_CONFIG": json.dumps(config)}))
  _finish(*procs)
  first, data = _weights(tmp_path / "worker0.npz")
  second, _ = _weights(tmp_path / "worker1.npz")
  assert int(data["replicas"]) == 2
  _assert_close(first, second, atol=0.0)  # in sync, bit for bit
  _assert_close(first, one_device[0])


def test_xla_compiles_one_program_per_padded_length(tmp_path):
  """With --pad_to_multiple_of=8 and max length 32, XLA sees at most 4
  sequence lengths; without it, one per batch length."""
  runs = {}
  for pad in (0, 8):
    path = tmp_path / f"xla{pad}.npz"
    _finish(_run(path, "--jit_compile", "--varied_lengths", "--steps=8",
                 f"--pad_to_multiple_of={pad}"))
    runs[pad] = np.load(path)
  assert int(runs[8]["traced_finetune"]) <= 4
  assert int(runs[8]["traced_distill"]) <= 4
  assert int(runs[0]["traced_finetune"]) > int(runs[8]["traced_finetune"])
  assert float(runs[8]["moved"]) > 1e-2


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
