"""`python -m fastbert_tf.predict`: the same as `fastbert-predict`.

The command is fastbert_tf/commands/predict.py; this module only keeps the
documented `python -m` form working, and defines nothing to import.
"""

if __name__ == "__main__":
  from fastbert_tf.commands import predict  # pylint: disable=g-import-not-at-top
  predict.run()
