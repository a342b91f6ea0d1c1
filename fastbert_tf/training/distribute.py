"""tf.distribute strategies by name, as TF Model Garden's flags name them.

  one_device             one GPU if --num_gpus >= 1, else the CPU (default)
  mirrored               the local GPUs (--num_gpus; all of them if 0 and
                         there are any), synchronous all-reduce
  multi_worker_mirrored  every host in TF_CONFIG, each with its local GPUs
  tpu                    a Cloud TPU (--tpu: its name or grpc:// address)

The model, its optimizer and its metrics are created under
`strategy.scope()`; `--batch_size` is the global batch, split evenly over
`strategy.num_replicas_in_sync` replicas.
"""

import json
import os

import tensorflow as tf
from absl import logging

from fastbert_tf.errors import ConfigError

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def get_strategy(name="one_device", num_gpus=0, tpu="", devices=None):
  """Builds the named strategy.

  Args:
    name: one of STRATEGIES.
    num_gpus: int, GPUs to use on this host (0 = the CPU for one_device,
      every visible GPU for mirrored).
    tpu: str, the TPU for name="tpu".
    devices: optional list of device strings for "mirrored" (tests use two
      logical CPUs: ["/cpu:0", "/cpu:1"]).

  Returns:
    tf.distribute.Strategy.

  Raises:
    ConfigError: an unknown name, more GPUs than visible, TF_CONFIG missing
      for multi_worker_mirrored, or no --tpu for tpu.
  """
  if name not in STRATEGIES:
    raise ConfigError(f"--distribution_strategy={name!r}; expected one of "
                      f"{STRATEGIES}")
  # Physical, not logical, devices: listing logical ones starts the runtime,
  # after which MultiWorkerMirroredStrategy can no longer configure its
  # collectives ("must be configured at program startup").
  gpus = tf.config.list_physical_devices("GPU") if num_gpus else []
  if num_gpus > len(gpus):
    raise ConfigError(f"--num_gpus={num_gpus} but this host has {len(gpus)} "
                      "visible GPUs")
  if name == "one_device":
    strategy = tf.distribute.OneDeviceStrategy(
        "/gpu:0" if num_gpus else "/cpu:0")
  elif name == "mirrored":
    if devices is None and num_gpus:
      devices = [f"/gpu:{i}" for i in range(num_gpus)]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
  elif name == "multi_worker_mirrored":
    if "TF_CONFIG" not in os.environ:
      raise ConfigError("--distribution_strategy=multi_worker_mirrored needs "
                        "TF_CONFIG (the cluster and this worker's task); see "
                        "docs/training.md 'Training at scale'")
    _check_tf_config(os.environ["TF_CONFIG"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  else:
    if not tpu:
      raise ConfigError("--distribution_strategy=tpu needs --tpu (a name or "
                        "grpc:// address; 'local' for a TPU VM)")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    strategy = tf.distribute.TPUStrategy(resolver)
  logging.info("Distribution: %s, %d replica(s) in sync.", name,
               strategy.num_replicas_in_sync)
  return strategy


def _check_tf_config(text):
  try:
    config = json.loads(text)
    config["cluster"]["worker"]  # pylint: disable=pointless-statement
    config["task"]["type"], config["task"]["index"]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError(f"TF_CONFIG is not a cluster spec ({e}); expected "
                      '{"cluster": {"worker": ["host:port", ...]}, "task": '
                      '{"type": "worker", "index": 0}}') from None


def is_chief(strategy):
  """Whether this process writes checkpoints, summaries and the model:
  worker 0 of a multi-worker cluster, or the only process."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not getattr(resolver, "task_type", None):
    return True
  return (resolver.task_type in ("chief", None) or
          (resolver.task_type == "worker" and resolver.task_id == 0 and
           "chief" not in resolver.cluster_spec().as_dict()))


def per_replica_batch(global_batch, strategy):
  """The per-replica batch; raises unless it divides evenly."""
  replicas = strategy.num_replicas_in_sync
  if global_batch % replicas:
    raise ConfigError(f"--batch_size={global_batch} (the global batch) is "
                      f"not divisible by the {replicas} replicas")
  return global_batch // replicas
