"""Exporting a trained model for serving (TF Serving, TFLite).

  serving_module.py  the SavedModel's tf.Module and its signatures (the
                     contract in export/README.md)
  exporter.py        `<export_base>/<version>/`, written atomically
  warmup.py          the warmup requests TF Serving replays at load
  tflite.py          TFLite conversion and the LiteRT runner

The server that serves these exports is fastbert_tf.serving; the command
lines are fastbert_tf.commands.export and .export_tflite.
"""
