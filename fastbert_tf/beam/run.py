"""`python -m fastbert_tf.beam.run`: the same as `fastbert-beam`.

The command is fastbert_tf/commands/beam.py; this module only keeps the
documented `python -m` form working, and defines nothing to import.
"""

if __name__ == "__main__":
  from fastbert_tf.commands import beam  # pylint: disable=g-import-not-at-top
  beam.run()
