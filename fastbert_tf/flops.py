"""`python -m fastbert_tf.flops`: the same as `fastbert-flops`.

The command is fastbert_tf/commands/flops.py; this module only keeps the
documented `python -m` form working, and defines nothing to import.
"""

if __name__ == "__main__":
  from fastbert_tf.commands import flops  # pylint: disable=g-import-not-at-top
  flops.run()
