"""TFLite conversion of the token-id signature, and a LiteRT runner.

The converted model keeps the early-exit tf.while_loop (TFLite WHILE), the
per-layer tf.cond tree (IF) and the shrinking batch, with builtin ops only;
`speed` stays an input. Run it with LiteRT (`ai_edge_litert`):
`tf.lite.Interpreter` segfaults on this graph (TF_NOTES trap 3).
"""

import numpy as np
import tensorflow as tf

from fastbert_tf.serving import export_module

QUANTIZATIONS = ("none", "dynamic")


def convert(saved_model_dir, quantize="none"):
  """Converts the `predict_ids` signature of an exported SavedModel.

  Args:
    saved_model_dir: str, `<export_base>/<version>`.
    quantize: "none" (float32) or "dynamic" (int8 weights, float compute:
      dynamic-range quantization).

  Returns:
    bytes, the .tflite flatbuffer.
  """
  if quantize not in QUANTIZATIONS:
    raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got "
                     f"{quantize!r}")
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model_dir, signature_keys=[export_module.SIGNATURE_IDS])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantize == "dynamic":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  return converter.convert()


def op_names(model_content):
  """Sorted names of the ops in every subgraph of a .tflite flatbuffer
  (the loop body and the IF branches are subgraphs of their own)."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
  builtin = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_")}
  names = set()
  for subgraph in model.subgraphs:
    for op in subgraph.operators:
      code = model.operatorCodes[op.opcodeIndex]
      # Codes above 127 live in builtinCode, older ones in the deprecated
      # field; the larger of the two is the real one.
      names.add(builtin[max(code.builtinCode, code.deprecatedBuiltinCode)])
  return sorted(names)


class LiteRTRunner:
  """Runs a converted model's `predict_ids` signature with LiteRT.

  Args:
    model_content: bytes of a .tflite file, or None with `model_path`.
    model_path: str path to a .tflite file.
    num_threads: int or None.
  """

  def __init__(self, model_content=None, model_path=None, num_threads=None):
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    self.interpreter = litert.Interpreter(
        model_content=model_content, model_path=model_path,
        num_threads=num_threads)
    self._runner = self.interpreter.get_signature_runner(
        export_module.SIGNATURE_IDS)

  def __call__(self, token_ids, segment_ids, padding_mask, speed):
    """int32 [batch, seq] inputs and a float speed -> dict of numpy outputs
    (the SavedModel's: probabilities, label, exit_layer, uncertainty, flops)."""
    return self._runner(
        token_ids=np.asarray(token_ids, np.int32),
        segment_ids=np.asarray(segment_ids, np.int32),
        padding_mask=np.asarray(padding_mask, np.int32),
        speed=np.asarray(speed, np.float32))
