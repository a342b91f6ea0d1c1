"""Offline inference on Apache Beam (the `beam` extra: pip install .[beam]).

  inference.FastBertModelHandler  a RunInference ModelHandler over
                                  fastbert_tf.Predictor (model directory or
                                  SavedModel export)
  pipeline.ClassifyFiles          read text / TSV / JSONL / TFRecord files,
                                  classify at a speed (or per record), write
                                  JSONL answers (and bad lines aside)
  run                             the command line (python -m
                                  fastbert_tf.beam.run), any Beam runner
"""
