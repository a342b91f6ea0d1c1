r"""Runs a command-line module and kill -9s it at a chosen checkpoint: the
tests' way to interrupt a training where they want (resume, publication,
damaged-run tests), without any hook read from the environment in library
code.

  python -m fastbert_tf.testing.kill_run PHASE:STEP MODULE [FLAGS...]
  python -m fastbert_tf.testing.kill_run finetune:3 fastbert_tf.train \
      --data=... --model_dir=...

PHASE:STEP is a phase name and global step whose checkpoint was just
written, or `publish:N` after the N-th file of a publication moved into the
model directory (training.loop.CHECKPOINT_OBSERVERS). The process then
SIGKILLs itself, as `kill -9` or a dying machine would.
"""

import os
import runpy
import signal
import sys

from fastbert_tf.training import loop


def install(kill_at):
  """Adds the observer that kills this process at `kill_at` (PHASE:STEP)."""

  def observe(phase, step):
    if f"{phase}:{step}" == kill_at:
      print(f"kill_run: SIGKILL at {kill_at}", file=sys.stderr, flush=True)
      os.kill(os.getpid(), signal.SIGKILL)

  loop.CHECKPOINT_OBSERVERS.append(observe)


def main(argv):
  if len(argv) < 3 or ":" not in argv[1]:
    raise SystemExit("usage: python -m fastbert_tf.testing.kill_run "
                     "PHASE:STEP MODULE [FLAGS...]")
  install(argv[1])
  sys.argv = [argv[2], *argv[3:]]
  runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv)
