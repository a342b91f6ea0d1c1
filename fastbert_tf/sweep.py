"""`python -m fastbert_tf.sweep`: the same as `fastbert-sweep`.

The command is fastbert_tf/commands/sweep.py; this module only keeps the
documented `python -m` form working, and defines nothing to import.
"""

if __name__ == "__main__":
  from fastbert_tf.commands import sweep  # pylint: disable=g-import-not-at-top
  sweep.run()
