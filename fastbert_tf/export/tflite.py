"""TFLite conversion of an exported signature, and a LiteRT runner.

The converted model keeps the early-exit tf.while_loop (TFLite WHILE), the
per-layer tf.cond tree (IF) and the shrinking batch; `speed` stays an input.
Two variants:
  "ids": the `predict_ids` signature, builtin ops only;
  "text": the `predict_text` signature with the tokenizer inside: builtin ops
    plus tensorflow-text's TFLite kernels as custom ops (TEXT_CUSTOM_OPS),
    which LiteRT's InterpreterWithCustomOps registers from tensorflow-text.
Run either with LiteRT (`ai_edge_litert`): `tf.lite.Interpreter` segfaults on
this graph (TF_NOTES trap 3).
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from fastbert_tf.data import rows
from fastbert_tf.export import serving_module

QUANTIZATIONS = ("none", "dynamic")
# The text variant's extra outputs: tokens each text input yields besides
# [CLS]/[SEP] (the text rule; 0 = empty, refuse the answer).
CONTENT_LENGTHS = {"text": "content_lengths", "text_b": "content_lengths_b"}
VARIANTS = {"ids": serving_module.SIGNATURE_IDS,
            "text": serving_module.SIGNATURE_TEXT}
# The tokenizer's ops with tensorflow-text TFLite kernels (normalization,
# word pieces, and the ragged -> dense step of TextEncoder's packing).
TEXT_CUSTOM_OPS = frozenset({"FastBertNormalize",
                             "FastWordpieceTokenizeWithOffsets",
                             # SentencePiece checkpoints (multilingual-e5).
                             "TFText>FastSentencepieceTokenize",
                             "RaggedTensorToTensor"})


def convert(saved_model_dir, quantize="none", variant="ids"):
  """Converts one signature of an exported SavedModel.

  Args:
    saved_model_dir: str, `<export_base>/<version>`.
    quantize: "none" (float32) or "dynamic" (int8 weights, float compute:
      dynamic-range quantization).
    variant: "ids" (`predict_ids`, builtin ops only) or "text"
      (`predict_text`: string [batch] `text` (and `text_b` for pair models)
      in, the tokenizer's ops as tensorflow-text custom ops).

  Returns:
    bytes, the .tflite flatbuffer.

  Raises:
    ValueError: an unknown quantize or variant, or (text) a custom op that
      tensorflow-text has no TFLite kernel for.
  """
  if quantize not in QUANTIZATIONS:
    raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got "
                     f"{quantize!r}")
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got "
                     f"{variant!r}")
  if variant == "text":
    with tempfile.TemporaryDirectory() as tmp:
      source = _text_with_lengths(saved_model_dir, tmp)
      content = _convert(source, variant, quantize)
  else:
    content = _convert(saved_model_dir, variant, quantize)
  # allow_custom_ops accepts any op; only tf-text's have kernels at run time.
  unknown = set(custom_op_names(content)) - TEXT_CUSTOM_OPS
  if unknown:
    raise ValueError(f"{saved_model_dir}: {VARIANTS[variant]} needs custom "
                     f"ops no TFLite kernel provides: {sorted(unknown)}")
  return content


def _convert(saved_model_dir, variant, quantize):
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model_dir, signature_keys=[VARIANTS[variant]])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if variant == "text":
    converter.allow_custom_ops = True
  if quantize == "dynamic":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  return converter.convert()


def _text_with_lengths(saved_model_dir, tmp):
  """A SavedModel whose predict_text also returns the text rule's measure.

  TFLite drops the graph's Assert, so the converted text model would answer
  a text empty to the tokenizer (blank, or only invisible, control, bidi or
  combining characters) from [CLS] [SEP] alone, where the SavedModel fails.
  It returns CONTENT_LENGTHS (int32 [batch], per text input) instead: 0
  marks an empty text, whose answer a client must not use (LiteRTRunner
  refuses the call). Returns the new SavedModel's directory.
  """
  loaded = tf.saved_model.load(saved_model_dir)
  signature = loaded.signatures[serving_module.SIGNATURE_TEXT]
  specs = signature.structured_input_signature[1]
  names = [n for n in ("text", "text_b") if n in specs]

  def predict_text(**inputs):
    out = dict(signature(**inputs))
    for name in names:
      out[CONTENT_LENGTHS[name]] = loaded.content_lengths(inputs[name])
    return out

  function = tf.function(predict_text).get_concrete_function(**specs)
  path = os.path.join(tmp, "with_lengths")
  tf.saved_model.save(loaded, path,
                      signatures={serving_module.SIGNATURE_TEXT: function})
  return path


def custom_op_names(model_content):
  """Sorted names of the custom ops in a .tflite flatbuffer."""
  model = _read(model_content)
  return sorted({c.customCode.decode() for c in model.operatorCodes
                 if c.customCode})


def _read(model_content):
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  return flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))


def op_names(model_content):
  """Sorted names of the ops in every subgraph of a .tflite flatbuffer
  (the loop body and the IF branches are subgraphs of their own)."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  model = _read(model_content)
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
  """Runs a converted model with LiteRT, whichever variant it is.

  Args:
    model_content: bytes of a .tflite file, or None with `model_path`.
    model_path: str path to a .tflite file.
    num_threads: int or None.

  Attributes:
    variant: "ids" or "text", from the signature the model holds.
    input_names: the signature's inputs besides `speed`.
  """

  def __init__(self, model_content=None, model_path=None, num_threads=None):
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    if model_content is None and model_path is None:
      raise ValueError("LiteRTRunner needs model_content or model_path")
    if model_content is None:
      with open(model_path, "rb") as f:
        model_content = f.read()
    if custom_op_names(model_content):
      # tf-text's kernels for the tokenizer (TF_NOTES trap 4).
      from tensorflow_text.core.pybinds import tflite_registrar  # pylint: disable=g-import-not-at-top
      self.interpreter = litert.InterpreterWithCustomOps(
          custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS,
          model_content=model_content, num_threads=num_threads)
    else:
      self.interpreter = litert.Interpreter(model_content=model_content,
                                            num_threads=num_threads)
    signatures = self.interpreter.get_signature_list()
    names = [v for v, key in VARIANTS.items() if key in signatures]
    if not names:
      raise ValueError(f"the model has none of the signatures "
                       f"{sorted(VARIANTS.values())}: {sorted(signatures)}")
    self.variant = names[0]
    self._runner = self.interpreter.get_signature_runner(VARIANTS[self.variant])
    self.input_names = sorted(
        set(signatures[VARIANTS[self.variant]]["inputs"]) - {"speed"})

  def __call__(self, speed, **inputs):
    """Runs the signature. Inputs are keyword-only (speed may be positional).

    Args:
      speed: float in [0, 1] for the whole batch, or float32 [batch], one
        per sample (as the SavedModel's signatures take it).
      **inputs: "ids": int32 [batch, seq] token_ids, segment_ids,
        padding_mask; "text": str/bytes [batch] text (and text_b).

    Returns:
      dict of numpy outputs, the SavedModel's: probabilities, label,
      exit_layer, uncertainty, flops.

    Raises:
      ValueError: (text) a text empty to the tokenizer, named by input and
        index, as the SavedModel's signature refuses it.
    """
    if sorted(inputs) != self.input_names:
      raise ValueError(f"this {self.variant} model takes "
                       f"{self.input_names} and speed, got {sorted(inputs)}")
    dtype = np.int32 if self.variant == "ids" else object
    feed = {k: np.asarray(v, dtype) for k, v in inputs.items()}
    out = self._runner(speed=np.asarray(speed, np.float32), **feed)
    for name in self.input_names:  # the text rule (see _text_with_lengths)
      lengths = out.pop(CONTENT_LENGTHS.get(name, ""), None)
      if lengths is not None and (np.asarray(lengths) <= 0).any():
        i = int(np.flatnonzero(np.asarray(lengths) <= 0)[0])
        raise ValueError(f"input '{name}'[{i}] {rows.EMPTY_TEXT}: "
                         f"{rows.show(_text(feed[name][i]))}")
    return out


def _text(value):
  return value.decode("utf-8", "replace") if isinstance(value, bytes) else (
      str(value))
