"""Our early-exit SavedModel against its peers, at batch 1 and 32 (issue 16).

  # one-time set-up of the peers' virtualenv (torch CPU, onnxruntime, onnx,
  # transformers, the authors' fastbert): ~6 min, ~1.3 GB
  python3 -m venv .venv-peers
  .venv-peers/bin/pip install -r bench/requirements-peers.txt
  # a briefly fine-tuned MiniLM-L6 on ag_news
  .venv/bin/python -m fastbert_tf.train --flagfile=configs/ag_news.flags \
      --model_dir=runs/peers_ag_news --max_train_samples=2000 \
      --finetune_epochs=1 --distill_epochs=1 --speeds=0,0.1,0.5,0.8
  # the benchmark (prepares the work directory first with --prepare)
  .venv/bin/python bench/peers.py --prepare --model_dir=runs/peers_ag_news \
      --rounds=5 --output=bench/results/peers.json

The same weights run in every contender, on the same 256 ag_news test texts
(and our tokenizer's ids; the authors' package tokenizes for itself, checked
equal): ours (bench/peers_tf.py: SavedModel with either dispatch and with
the export options --single_text=xla (two bucket sets) and
--dtype_policy=mixed_bfloat16, plain forward, hand-written truncated
forward; LiteRT from the plain and the xla export) and the peers
(bench/peers_torch.py: transformers BertModel in PyTorch, full and in an
early-exit loop; ONNX Runtime full model, plain and optimizer-fused; the
FastBERT authors' `fastbert` package, as shipped and without its padding).

Each runtime family runs in a worker process of its own (tf, litert, torch,
ort), 2 threads each, started once: every worker first checks that each of
its contenders gives our SavedModel's labels and exit layers on every text
(failing the run loudly if not), warms up, then waits. The driver asks one
worker at a time to time one group (batch size, speed) of its contenders,
one pass over the texts each, with groups and workers in a shuffled order
per round and a short pause between workers (so threads left spinning by
one runtime settle before the next starts). Samples/s come from the median
round. Records go to --output via bench/common.py, with the load average
and the busiest other processes at start and end.
"""

import collections
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app
from absl import flags

from bench import common
from bench import peers_lib

FLAGS = flags.FLAGS
# Our SavedModels: the two dispatches, and (issue 16 part 2) the export
# options for one text at a time (bench/peers_tf.py EXPORT_OPTIONS).
EXPORTS = ("saved_model_cond", "saved_model_tensor_array", "saved_model_xla",
           "saved_model_xla_fine", "saved_model_bf16")
# --tf_variants: the environment each extra TF worker runs under.
TF_VARIANTS = {
    # oneDNN's fused kernels off (on by default on x86 Linux).
    "nodnn": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    # XLA auto-clustering of every graph, CPU included.
    "autojit": {"TF_XLA_FLAGS": "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"},
}
flags.DEFINE_string("model_dir", "runs/peers_ag_news", "Trained model.")
flags.DEFINE_string("data", "../shared/data/ag_news", "Test split source.")
flags.DEFINE_string("workdir", "runs/peers_ag_news/peers",
                    "Work directory (bench/peers_tf.py --mode=prepare).")
flags.DEFINE_boolean("prepare", False,
                     "Prepare the work directory first (exports, ids, "
                     "ported weights, ONNX files).")
flags.DEFINE_integer("max_samples", 256, "Test texts (with --prepare).")
flags.DEFINE_string("name", "minilm_l6_ag_news_2k",
                    "Model name in the records.")
flags.DEFINE_list("workers", ["tf", "litert", "torch", "ort"],
                  "Worker processes to run.")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes.")
flags.DEFINE_list("tf_variants", [],
                  "Extra TF workers under other settings, timing the "
                  "SavedModels only: " + ", ".join(sorted(TF_VARIANTS)) + ".")
flags.DEFINE_integer("rounds", 5, "Alternating rounds; the median is kept.")
flags.DEFINE_float("max_timing_minutes", 0,
                   "When > 0, no new round starts after this many minutes of "
                   "timing (at least one round is always completed), so a "
                   "paused background job stays paused for a bounded time.")
flags.DEFINE_integer("threads", 2, "Threads per runtime.")
flags.DEFINE_float("pause", 0.3, "Seconds between two workers' turns.")
flags.DEFINE_integer("seed", 0, "Seed of the run order.")
flags.DEFINE_integer("texts", 0,
                     "Time the first N prepared texts only (a multiple of "
                     "32; 0: all), for quicker runs.")
flags.DEFINE_string("stop_pattern", None,
                    "While timing (after the workers' set-up), SIGSTOP the "
                    "processes whose command line matches this pkill -f "
                    "pattern, and SIGCONT them after (also on errors), e.g. "
                    "a background training. Run under a shell trap that "
                    "resumes them too (BENCHMARKS.md).")
flags.DEFINE_string("tf_python", ".venv/bin/python", "Main venv's python.")
flags.DEFINE_string("peers_python", ".venv-peers/bin/python",
                    "The peers venv's python.")
flags.DEFINE_string("output", "bench/results/peers.json",
                    "Records are appended to this json list.")
flags.DEFINE_string("code_root", None,
                    "Run the workers (and prepare) from this copy of the "
                    "repository instead of this one, e.g. a `git archive` of "
                    "a commit plus bench/peers*.py: TF re-reads library "
                    "source when it traces, so a working tree others are "
                    "editing can break a long run.")

HERE = os.path.dirname(os.path.abspath(__file__))


def _bench(script):
  root = FLAGS.code_root or os.path.dirname(HERE)
  return os.path.join(os.path.abspath(root), "bench", script)


def _worker_command(name):
  if name in TF_VARIANTS:
    return [FLAGS.tf_python, _bench("peers_tf.py"), "--runtime=tf",
            f"--family=tf_{name}",
            "--only=saved_model_cond,saved_model_tensor_array",
            f"--workdir={FLAGS.workdir}", f"--threads={FLAGS.threads}",
            f"--texts={FLAGS.texts}", f"--batch_sizes={','.join(FLAGS.batch_sizes)}",
            f"--seed={FLAGS.seed}", "--mode=worker"]
  common_flags = [f"--workdir={FLAGS.workdir}", f"--threads={FLAGS.threads}",
                  f"--texts={FLAGS.texts}",
                  f"--batch_sizes={','.join(FLAGS.batch_sizes)}",
                  f"--seed={FLAGS.seed}", "--mode=worker"]
  if name in ("tf", "litert"):
    return [FLAGS.tf_python, _bench("peers_tf.py"),
            f"--runtime={name}"] + common_flags
  return [FLAGS.peers_python, _bench("peers_torch.py"),
          f"--runtime={name}"] + common_flags


def _run(cmd):
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True)


def prepare():
  _run([FLAGS.tf_python, _bench("peers_tf.py"), "--mode=prepare",
        f"--model_dir={FLAGS.model_dir}", f"--data={FLAGS.data}",
        f"--workdir={FLAGS.workdir}", f"--max_samples={FLAGS.max_samples}"])
  _run([FLAGS.peers_python, _bench("peers_torch.py"),
        "--mode=export_onnx", f"--workdir={FLAGS.workdir}"])


class Worker:
  """A worker process; its stderr goes to <workdir>/logs/<name>.log."""

  def __init__(self, name):
    self.name = name
    os.makedirs(os.path.join(FLAGS.workdir, "logs"), exist_ok=True)
    self.log_path = os.path.join(FLAGS.workdir, "logs", f"{name}.log")
    self.log = open(self.log_path, "w", encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               **TF_VARIANTS.get(name, {}))
    self.proc = subprocess.Popen(_worker_command(name), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=self.log,
                                 text=True, bufsize=1, env=env)

  def receive(self):
    line = self.proc.stdout.readline()
    if not line:
      self.proc.wait()
      with open(self.log_path, encoding="utf-8") as f:
        tail = f.read()[-4000:]
      raise RuntimeError(f"worker {self.name} stopped (exit "
                         f"{self.proc.returncode}); its log "
                         f"{self.log_path} ends:\n{tail}")
    return json.loads(line)

  def ask(self, msg):
    self.proc.stdin.write(json.dumps(msg) + "\n")
    return self.receive()

  def close(self):
    if self.proc.poll() is None:
      try:
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)
      except (OSError, subprocess.TimeoutExpired):
        self.proc.kill()
    self.log.close()


def _signal_stop_pattern(signal_name):
  """Signals the --stop_pattern processes, never this driver or its parent:
  their command lines hold the pattern itself (--stop_pattern=...), so a
  plain `pkill -STOP -f` froze the driver before its first timed turn."""
  if FLAGS.stop_pattern:
    out = subprocess.run(["pgrep", "-f", FLAGS.stop_pattern], check=False,
                         capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()
            if int(p) not in (os.getpid(), os.getppid())]
    for pid in pids:
      try:
        os.kill(pid, getattr(signal, f"SIG{signal_name}"))
      except ProcessLookupError:
        pass
    print(f"SIG{signal_name} sent to {pids} (matching "
          f"{FLAGS.stop_pattern!r})", flush=True)


def _code_version():
  """The commit the workers ran (a --code_root's COMMIT file, else git)."""
  root = os.path.abspath(FLAGS.code_root or os.path.dirname(HERE))
  path = os.path.join(root, "COMMIT")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return dict(root=root, commit=f.read().strip())
  out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=False,
                       capture_output=True, text=True).stdout.strip()
  return dict(root=root, commit=out, working_tree=True)


def busy_processes(limit=6):
  """The busiest processes other than this run's, for the record."""
  out = subprocess.run(["ps", "-eo", "pid,ni,pcpu,stat,args", "--sort=-pcpu"],
                       capture_output=True, text=True, check=False).stdout
  rows = [r.strip()[:160] for r in out.splitlines()[1:limit + 1]]
  return dict(load_average=os.getloadavg(), top=rows)


def summary(sps, reference, meta):
  """The issue's target ratios, from samples/s."""
  out = {}
  for b in (1, 32):
    def get(name, speed=None, b=b):
      return sps.get(peers_lib.key(*name.split("/"), b, speed))
    for d in EXPORTS:
      for s in peers_lib.SPEEDS:
        loop, floor = get(f"tf/{d}", s), get("tf/truncated", s)
        if loop and floor:
          out[f"b{b} {d} / truncated at {s:g}"] = loop / floor
      if b == 32:
        plain, loop = get("tf/plain"), get(f"tf/{d}", 0.0)
        if plain and loop:
          out[f"b32 {d} speed 0 / plain"] = loop / plain
    for d in EXPORTS:
      loop = get(f"tf/{d}", 0.5)
      for peer in ("ort/fused", "ort/plain", "torch/hf_full"):
        if loop and get(peer):
          out[f"b{b} {d} at 0.5 / {peer}"] = loop / get(peer)
      unpadded = get("torch/fastbert_unpadded", 0.5)
      if loop and unpadded:
        out[f"b{b} {d} at 0.5 / fastbert_unpadded at 0.5"] = loop / unpadded
  gold = np.asarray(meta["gold"])
  accuracy = {f"{s:g}": float(np.mean(
      np.asarray(reference[f"b1s{s:g}"]["labels"]) == gold))
              for s in peers_lib.SPEEDS}
  exits = {f"{s:g}": float(np.mean(reference[f"b1s{s:g}"]["exit_layers"]))
           for s in peers_lib.SPEEDS}
  return out, accuracy, exits


def own_accuracy(checks, meta):
  """{contender: accuracy} of the contenders allowed to differ from the
  reference on a few texts (their checks carry their labels)."""
  gold = np.asarray(meta["gold"])
  return {k: float(np.mean(np.asarray(c["labels"]) == gold))
          for worker in checks.values() for k, c in worker.items()
          if isinstance(c, dict) and len(c.get("labels", ())) == len(gold)}


def main(argv):
  del argv
  if FLAGS.prepare:
    prepare()
  with open(os.path.join(FLAGS.workdir, "texts.json"), encoding="utf-8") as f:
    meta = json.load(f)
  with open(os.path.join(FLAGS.workdir, "reference.json"),
            encoding="utf-8") as f:
    reference = json.load(f)
  meta, reference = peers_lib.first_texts(meta, reference, FLAGS.texts)
  n = len(meta["texts"])
  start_load = busy_processes()
  t0 = time.time()
  workers = {name: Worker(name)
             for name in FLAGS.workers + FLAGS.tf_variants}
  try:
    ready, checks = {}, {}
    for name, w in workers.items():
      msg = w.receive()
      ready[name] = msg["ready"]
      checks[name] = msg["checks"]
      bf16 = " (bf16 ones: on >= 95%)" if any(
          "bf16" in k for k in msg["ready"]) else ""
      print(f"{name}: {len(msg['ready'])} contenders agree with the "
            f"SavedModel on all {n} texts{bf16}", flush=True)
    setup_seconds = time.time() - t0
    groups = collections.defaultdict(set)
    for name, keys in ready.items():
      for k in keys:
        groups[peers_lib.group_of(k)].add(name)
    seconds = collections.defaultdict(list)
    order = peers_lib.schedule(groups, list(workers), FLAGS.rounds, FLAGS.seed)
    _signal_stop_pattern("STOP")
    stopped_load = busy_processes()
    t1 = time.time()
    rounds_done = FLAGS.rounds
    for i, (r, group, name) in enumerate(order):
      if (FLAGS.max_timing_minutes > 0 and r > 0 and order[i - 1][0] != r and
          time.time() - t1 > 60 * FLAGS.max_timing_minutes):
        rounds_done = r
        print(f"time limit: stopping after {r} rounds", flush=True)
        break
      reply = workers[name].ask({"cmd": "time", "group": list(group)})
      for k, v in reply["seconds"].items():
        seconds[k].append(v)
      time.sleep(FLAGS.pause)
      if (i + 1) % 10 == 0:
        print(f"round {r + 1}/{FLAGS.rounds}: {i + 1}/{len(order)} turns, "
              f"{time.time() - t1:.0f} s", flush=True)
    timing_seconds = time.time() - t1
    end_load = busy_processes()
  finally:
    _signal_stop_pattern("CONT")
    for w in workers.values():
      w.close()
  median = peers_lib.medians(seconds)
  sps = {k: n / v for k, v in median.items()}
  ratios, accuracy, exits = summary(sps, reference, meta)
  differing = own_accuracy(checks, meta)
  record = common.record(
      benchmark="peers", model=FLAGS.name, model_dir=FLAGS.model_dir,
      num_texts=n, rounds=rounds_done, threads=FLAGS.threads,
      samples_per_second=sps, seconds_per_round=dict(seconds),
      accuracy_on_texts=accuracy, mean_exit_layer=exits, ratios=ratios,
      accuracy_of_differing_contenders=differing,
      agreement=checks, setup_seconds=setup_seconds,
      timing_seconds=timing_seconds, load_at_start=start_load,
      load_when_timing_started=stopped_load, load_at_end=end_load,
      stopped_during_timing=FLAGS.stop_pattern,
      tf_variants=FLAGS.tf_variants,
      code=_code_version())
  records = common.read_records(FLAGS.output) + [record]
  common.write_records(FLAGS.output, records)
  print("\n".join(peers_lib.table_rows(sps)))
  for k, v in ratios.items():
    print(f"{k}: {v:.2f}")
  print("accuracy on the texts:", accuracy, "mean exit layer:", exits)
  for k, v in differing.items():
    print(f"{k}: own accuracy {100 * v:.2f}%")


if __name__ == "__main__":
  app.run(main)
