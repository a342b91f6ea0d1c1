"""What bench/peers.py and its runtime workers share; no TF, torch or ORT here.

The peers benchmark runs each runtime family in a process of its own (TF,
LiteRT, PyTorch, ONNX Runtime): on 2 cores the worker threads one runtime
leaves spinning would steal time from the next. The driver (bench/peers.py)
talks to the workers over their stdin/stdout, one JSON object per line, and
asks one worker at a time to time one group of its contenders, so contenders
of every runtime alternate in shuffled rounds within one run.

A contender is named by a key "family/name@b<batch>[s<speed>]", e.g.
"tf/saved_model_cond@b1s0.5" or "ort/fused@b32" (a full model has no speed).
"""

import json
import os
import random
import sys
import time

import numpy as np

SPEEDS = (0.0, 0.1, 0.5, 0.8)
# Where a worker's protocol goes: its real stdout. Everything libraries print
# is sent to stderr instead (see `protocol_streams`).
_PROTOCOL = None


class AgreementError(AssertionError):
  """A contender's labels or exit layers differ from the reference's."""


def key(family, name, batch_size, speed=None):
  """The contender key, e.g. key("tf", "plain", 1) -> "tf/plain@b1"."""
  speed_part = "" if speed is None else f"s{float(speed):g}"
  return f"{family}/{name}@b{int(batch_size)}{speed_part}"


def parse_key(k):
  """key() inverted: -> (family, name, batch_size, speed or None)."""
  family_name, config = k.split("@")
  family, name = family_name.split("/", 1)
  if "s" in config:
    batch, speed = config[1:].split("s")
    return family, name, int(batch), float(speed)
  return family, name, int(config[1:]), None


def group_of(k):
  """Contenders timed back to back by one worker: same batch size and speed
  (full models, which have no speed, form a group per batch size)."""
  _, _, batch, speed = parse_key(k)
  return (batch, speed)


def batches(items, batch_size):
  """Consecutive chunks of batch_size (the last may be smaller)."""
  return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


def normalized_entropy(probs):
  """float [batch, classes] probabilities -> float64 [batch] entropy / log N
  (the paper's uncertainty), safe at p = 0."""
  p = np.asarray(probs, np.float64)
  logp = np.log(np.where(p > 0, p, 1.0))
  return -(p * logp).sum(-1) / np.log(p.shape[-1])


def check_agreement(name, labels, exit_layers, reference, speed=None,
                    max_disagreements=0):
  """Raises AgreementError unless labels (and exit layers) equal the
  reference's on every text (on all but max_disagreements texts: for a
  contender computing in another precision, e.g. bfloat16).

  Args:
    name: the contender, for the message.
    labels: int [n] labels of the contender.
    exit_layers: int [n] 1-based exit layers, or None for a full model
      (then compared with the reference at speed 0).
    reference: dict with "labels", "exit_layers" (lists of int [n]) and
      "uncertainty" (float [n]) of our SavedModel at this speed.
    speed: float, for the message.
    max_disagreements: int, texts allowed to differ.

  Returns:
    dict(texts=n, labels_equal=n, exit_layers_equal=n or None, labels=its
    labels as a list when max_disagreements > 0, for its own accuracy).
  """
  log(f"checking {name}")
  ref_labels = np.asarray(reference["labels"])
  labels = np.asarray(labels)
  if labels.shape != ref_labels.shape:
    raise AgreementError(f"{name}: {labels.shape[0]} answers for "
                         f"{ref_labels.shape[0]} texts")
  bad = np.flatnonzero(labels != ref_labels)
  exits_equal = None
  if exit_layers is not None:
    ref_exits = np.asarray(reference["exit_layers"])
    exit_layers = np.asarray(exit_layers)
    bad = np.union1d(bad, np.flatnonzero(exit_layers != ref_exits))
    exits_equal = int(np.sum(exit_layers == ref_exits))
  if bad.size > max_disagreements:
    unc = np.asarray(reference.get("uncertainty", [np.nan] * len(ref_labels)))
    rows = [f"text {i}: label {labels[i]} vs {ref_labels[i]}"
            + ("" if exit_layers is None else
               f", exit {exit_layers[i]} vs {reference['exit_layers'][i]}")
            + f" (reference uncertainty {unc[i]:.7f})" for i in bad[:10]]
    raise AgreementError(
        f"{name} disagrees with our SavedModel at speed {speed} on "
        f"{bad.size} of {len(ref_labels)} texts:\n  " + "\n  ".join(rows))
  out = dict(texts=int(len(ref_labels)),
             labels_equal=int(np.sum(labels == ref_labels)),
             exit_layers_equal=exits_equal)
  if max_disagreements:
    out["labels"] = labels.tolist()
  return out


def first_texts(meta, reference, n):
  """meta and reference cut to the first n texts (0: all); n must be a
  multiple of 32 so the batch-32 batches stay the prepared ones."""
  if not n or n >= len(meta["texts"]):
    return meta, reference
  if n % 32:
    raise ValueError(f"--texts={n}: must be a multiple of 32")
  meta = dict(meta, texts=meta["texts"][:n], gold=meta["gold"][:n])
  reference = {k: {f: v[:n] for f, v in r.items()}
               for k, r in reference.items()}
  return meta, reference


def time_pass(fn, inputs):
  """Seconds to call fn on every element of inputs once, in order."""
  start = time.perf_counter()
  for x in inputs:
    fn(x)
  return time.perf_counter() - start


def schedule(groups, workers, rounds, seed):
  """The run order: per round, every (group, worker) pair once, groups in a
  shuffled order and the workers of each group in a shuffled order.

  Args:
    groups: {group: set of worker names that have contenders in it}.
    workers: unused names are ignored; kept for a stable signature.
    rounds: int.
    seed: int, so a run's order can be repeated.

  Returns:
    list of (round, group, worker), in run order.
  """
  del workers
  rng = random.Random(seed)
  order = []
  keys = sorted(groups, key=lambda g: (g[0], -1.0 if g[1] is None else g[1]))
  for r in range(rounds):
    shuffled = list(keys)
    rng.shuffle(shuffled)
    for g in shuffled:
      names = sorted(groups[g])
      rng.shuffle(names)
      order += [(r, g, w) for w in names]
  return order


def medians(seconds):
  """{key: [seconds per round]} -> {key: median seconds}."""
  return {k: float(np.median(v)) for k, v in seconds.items() if v}


# -- the worker side of the protocol ----------------------------------------

def protocol_streams():
  """Moves this process's stdout to stderr and keeps the real stdout for
  the protocol, so a library that prints cannot corrupt it."""
  global _PROTOCOL
  if _PROTOCOL is None:
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _PROTOCOL = os.fdopen(fd, "w", buffering=1)
  return _PROTOCOL


def send(obj, stream=None):
  (stream or protocol_streams()).write(json.dumps(obj) + "\n")


def serve(contenders, info, seed=0):
  """A worker's main loop.

  Args:
    contenders: {key: (fn, inputs)}; timing a contender is one call of fn
      per element of inputs.
    info: json-able dict sent first (agreement checks, load times...).
    seed: int for the order of contenders within a group.

  Commands (one json object per line on stdin):
    {"cmd": "time", "group": [batch, speed or null]} -> {"seconds": {key: s}}
    {"cmd": "quit"} -> exits.
  """
  out = protocol_streams()
  send(dict(info, ready=sorted(contenders)), out)
  rng = random.Random(seed)
  for line in sys.stdin:
    msg = json.loads(line)
    if msg["cmd"] == "quit":
      return
    group = (int(msg["group"][0]),
             None if msg["group"][1] is None else float(msg["group"][1]))
    keys = [k for k in contenders if group_of(k) == group]
    rng.shuffle(keys)
    seconds = {}
    for k in keys:
      fn, inputs = contenders[k]
      seconds[k] = time_pass(fn, inputs)
    send(dict(seconds=seconds), out)


def log(message):
  """Progress to the worker's stderr (the driver keeps it in a log file)."""
  print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
        flush=True)


# -- the table -----------------------------------------------------------------

def table_rows(samples_per_second, ratios_to=None):
  """{key: samples/s} -> markdown rows: one per (family/name, batch), one
  column per speed (full models: one value under every speed).

  Args:
    samples_per_second: {key: float}.
    ratios_to: optional key; each cell then also shows value / that key's.

  Returns:
    list of str, header first.
  """
  cells = {}
  for k, v in samples_per_second.items():
    family, name, batch, speed = parse_key(k)
    cells.setdefault((batch, f"{family}/{name}"), {})[speed] = v
  header = ("| batch | contender | " +
            " | ".join(f"speed {s:g}" for s in SPEEDS) + " |")
  rows = [header, "|---|---|" + "---|" * len(SPEEDS)]
  for (batch, name), by_speed in sorted(cells.items()):
    row = []
    for s in SPEEDS:
      v = by_speed.get(s, by_speed.get(None))
      row.append("" if v is None else f"{v:.1f}")
    rows.append(f"| {batch} | {name} | " + " | ".join(row) + " |")
  return rows
