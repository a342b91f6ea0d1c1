r"""Convert an exported SavedModel to TFLite.

  python export/export_tflite.py --saved_model=exports/quickstart/1 \
      --output=quickstart.tflite [--quantize=dynamic] [--variant=text]

The command is fastbert_tf/commands/export_tflite.py (installed with the
package; also `python -m fastbert_tf.commands.export_tflite`); this script
keeps the path-based form working.
"""

from fastbert_tf.commands import export_tflite

if __name__ == "__main__":
  export_tflite.run()
