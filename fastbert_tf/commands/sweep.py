r"""Sweep the exit threshold: accuracy, FLOPs and speedup at every speed.

  fastbert-sweep --model_dir=runs/quickstart --data=quickstart \
      --speeds=0:1:0.05 --output_dir=runs/quickstart/sweep \
      [--target_accuracy_drop=0.5 | --target_speedup=2] \
      [--paper_dataset="Book review"] [--exit_criterion=entropy]
  (or python -m fastbert_tf.sweep)

Every classifier runs once per sample; the numbers at each speed are derived
from those outputs (fastbert_tf/inference/sweep.py), equal to running the
early-exit loop at each speed. Writes sweep.csv, sweep.json and PNG figures
into --output_dir and prints the table.

Exit status: 0 on success; 1 on a usage or data error; 3 when a --target_*
was asked and no swept speed meets it (every output is still written, and
sweep.json's target.message says why).
"""

import sys

from absl import app
from absl import flags

from fastbert_tf import errors
from fastbert_tf.commands import common
from fastbert_tf.commands import flags as fastbert_flags

FLAGS = flags.FLAGS
TARGET_NOT_MET = 3


def _speeds(name, text):
  from fastbert_tf.inference import sweep  # TF import is slow.
  try:
    return sweep.parse_speeds(text)
  except sweep.SweepError as e:
    raise app.UsageError(f"--{name}: {e}") from e


def _layers(values):
  try:
    layers = tuple(int(v) for v in values)
  except ValueError as e:
    raise app.UsageError(f"--uncertainty_layers must be integers: {e}") from e
  if any(k < 1 for k in layers):
    raise app.UsageError(f"--uncertainty_layers are 1-based, got {layers}")
  return layers


def config_from_flags(flag_values=FLAGS):
  """Turns the parsed flags into a frozen SweepConfig, checking each."""
  from fastbert_tf.reporting import report as reporting  # pylint: disable=g-import-not-at-top
  from fastbert_tf.reporting import paper_results  # pylint: disable=g-import-not-at-top
  for name in ("model_dir", "output_dir"):
    if not flag_values[name].value:
      raise app.UsageError(f"--{name} is required")
  drop, speedup = flag_values.target_accuracy_drop, flag_values.target_speedup
  if drop is not None and speedup is not None:
    raise app.UsageError("give at most one of --target_accuracy_drop and "
                         "--target_speedup")
  if drop is not None and drop < 0:
    raise app.UsageError(f"--target_accuracy_drop is in points >= 0, got "
                         f"{drop}")
  if speedup is not None and speedup <= 0:
    raise app.UsageError(f"--target_speedup must be > 0, got {speedup}")
  if flag_values.paper_dataset:
    try:
      paper_results.lookup(flag_values.paper_dataset)
    except ValueError as e:
      raise app.UsageError(f"--paper_dataset: {e}") from e
  return reporting.SweepConfig(
      model_dir=flag_values.model_dir, output_dir=flag_values.output_dir,
      speeds=_speeds("speeds", flag_values.speeds), data=flag_values.data,
      split=flag_values.split, dev_split=flag_values.dev_split,
      batch_size=flag_values.batch_size, max_samples=flag_values.max_samples,
      target_accuracy_drop=drop, target_speedup=speedup,
      paper_dataset=flag_values.paper_dataset,
      histogram_speeds=_speeds("histogram_speeds",
                               flag_values.histogram_speeds),
      uncertainty_layers=_layers(flag_values.uncertainty_layers),
      exit_criterion=flag_values.exit_criterion, top_k=flag_values.top_k,
      skip_bad_rows=flag_values.skip_bad_rows)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Bad flags end in one `error:` line, as bad data does.
  cfg = common.exit_on_user_error(
      config_from_flags, user_errors=(errors.UserError, app.UsageError))
  from fastbert_tf.reporting import report as reporting  # pylint: disable=g-import-not-at-top
  from fastbert_tf.inference import sweep  # pylint: disable=g-import-not-at-top
  from fastbert_tf.reporting import plots  # pylint: disable=g-import-not-at-top
  # Bad input is the user's to fix: say what and where, no traceback.
  results = common.exit_on_user_error(
      reporting.run_sweep, cfg,
      user_errors=(errors.UserError, sweep.SweepError, FileNotFoundError))
  print(reporting.summary_text(results), flush=True)
  print(f"wrote {cfg.output_dir}: sweep.csv, sweep.json, "
        f"{', '.join(plots.FILES.values())}", flush=True)
  target = results.get("target")
  if target and not target["met"]:
    print(f"error: target not met on {target['dev_split']}: "
          f"{target['message']}", file=sys.stderr)
    sys.exit(TARGET_NOT_MET)


def define_flags():
  """Every flag of the command."""
  fastbert_flags.define_sweep_flags()
  fastbert_flags.define_exit_flags()
  common.define_verbose_flag()


def run():
  """fastbert-sweep (and `python -m fastbert_tf.sweep`)."""
  common.run_command(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
