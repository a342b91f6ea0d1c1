r"""Export a trained fastbert_tf model as a TF Serving SavedModel.

  python export/export_saved_model.py --model_dir=runs/quickstart \
      --export_base=exports/quickstart [--version=N]

The same as `fastbert-export`: the command is
fastbert_tf/commands/export.py (installed with the package); this script
keeps the path-based form working. The signature contract is in
export/README.md.
"""

from fastbert_tf.commands import export

if __name__ == "__main__":
  export.run()
