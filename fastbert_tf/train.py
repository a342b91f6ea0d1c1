"""`python -m fastbert_tf.train`: the same as `fastbert-train`.

The command is fastbert_tf/commands/train.py; this module only keeps the
documented `python -m` form working, and defines nothing to import.
"""

if __name__ == "__main__":
  from fastbert_tf.commands import train  # pylint: disable=g-import-not-at-top
  train.run()
