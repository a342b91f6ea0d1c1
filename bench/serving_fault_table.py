"""The serving fault kinds: one function per kind (context -> verdict).

Most are one row of a table (a request and the error it must get); valid
edge cases must get the SavedModel's own answer.
"""


import numpy as np

from bench.serving_fault_kinds import (EXHAUSTED, INVALID, NOT_FOUND, PB,
                                       TEXTS, expect_answer, expect_error,
                                       request)
from fastbert_tf.serving import protos
from fastbert_tf.testing import invisible_text as invisible

import grpc  # pylint: disable=g-bad-import-order

UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED
F32 = np.float32


def _t(texts=TEXTS, speed=F32(0.5)):
  return {"text": np.array(list(texts), object), "speed": speed}


def _ids(token_ids=((2, 7 % 5, 3), (2, 4, 3)), segment_ids=None,
         padding_mask=None, speed=F32(0.5)):
  token_ids = np.asarray(token_ids, np.int32)
  return {"token_ids": token_ids,
          "segment_ids": (np.zeros_like(token_ids) if segment_ids is None
                          else np.asarray(segment_ids, np.int32)),
          "padding_mask": (np.ones_like(token_ids) if padding_mask is None
                           else np.asarray(padding_mask, np.int32)),
          "speed": speed}


def _proto(value, as_dtype=None, dims=None, **fields):
  """A TensorProto of value, then its dims and fields (dtype,
  tensor_content) overwritten: what a buggy or hostile client sends."""
  proto = protos.make_tensor_proto(value, as_dtype)
  if dims is not None:
    del proto.tensor_shape.dim[:]
    for size in dims:
      proto.tensor_shape.dim.add().size = size
  for key, new in fields.items():
    setattr(proto, key, new)
  return proto


def _with(inputs, **changes):
  inputs = dict(inputs)
  for key, value in changes.items():
    if value is None:
      inputs.pop(key)
    else:
      inputs[key] = value
  return inputs


def _unknown_rank():
  proto = protos.make_tensor_proto(np.array(TEXTS, object))
  proto.tensor_shape.unknown_rank = True
  return proto


def _error_kind(name, data, codes, pattern, method="Predict"):
  codes = codes if isinstance(codes, tuple) else (codes,)

  def kind(context):
    payload = data() if callable(data) else data
    return expect_error(context, payload, codes, pattern, method)
  kind.__name__ = name
  return kind


def _answer_kind(name, inputs, signature="serving_default", **spec):
  def kind(context):
    return expect_answer(context, request(inputs, signature, **spec),
                         signature, inputs)
  kind.__name__ = name
  return kind


def _metadata(name="fastbert", fields=("signature_def",)):
  req = PB.get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=list(fields))
  req.model_spec.name = name
  return req.SerializeToString()


_IDS = "predict_ids"
_ROWS = [
    # Model, version, label, signature.
    ("unknown_model", request(_t(), name="nope"), NOT_FOUND, r"model 'nope'"),
    ("empty_model_name", request(_t(), name=""), NOT_FOUND, r"model ''"),
    ("unknown_version", request(_t(), version=99), NOT_FOUND,
     r"Specific\(fastbert, 99\)"),
    ("negative_version", request(_t(), version=-1), NOT_FOUND,
     r"Specific\(fastbert, -1\)"),
    ("unknown_version_label", request(_t(), label="canary"), INVALID,
     r"Unrecognized servable version label: canary"),
    ("unknown_signature", request(_t(), "classify"), NOT_FOUND,
     r'signature key "classify" not found'),
    ("garbage_signature_name", request(_t(), "\u202e\x00sig"), NOT_FOUND,
     r"signature key"),
    # Inputs present / absent.
    ("missing_speed", request(_with(_t(), speed=None)), INVALID,
     r"missing \['speed'\]"),
    ("missing_text", request(_with(_t(), text=None)), INVALID,
     r"missing \['text'\]"),
    ("text_b_on_single_text_model",
     request(_with(_t(), text_b=np.array(["x"] * 3, object))), INVALID,
     r"unexpected \['text_b'\]"),
    ("empty_input_name", request(_with(_t(), **{"": F32(1)})), INVALID,
     r"unexpected \[''\]"),
    # Dtypes.
    ("text_as_int32", request(_with(_t(), text=np.int32([1, 2, 3]))), INVALID,
     r"'text' must be DT_STRING, got DT_INT32"),
    ("speed_as_double", request(_t(speed=np.float64(0.5))), INVALID,
     r"'speed' must be DT_FLOAT, got DT_DOUBLE"),
    ("speed_as_int32", request(_t(speed=np.int32(1))), INVALID,
     r"got DT_INT32"),
    ("speed_as_string", request(_t(speed=np.array(b"0.5", object))), INVALID,
     r"got DT_STRING"),
    ("speed_as_half", request(_t(speed=_proto(F32(0.5), dtype=19))),
     INVALID,
     r"got DT_HALF"),
    ("dtype_invalid", request(_with(_t(), text=_proto(
        np.array(TEXTS, object), object, dtype=0))), INVALID,
     r"got DT_INVALID"),
    ("dtype_unknown_enum", request(_with(_t(), text=_proto(
        np.array(TEXTS, object), object, dtype=9999))), INVALID,
     r"got dtype enum 9999"),
    # Shapes.
    ("text_scalar", request(_with(_t(), text=np.array(b"a", object))),
     INVALID, r"'text' must have shape \[None\] \(rank 1\), got \[\]"),
    ("text_rank_2", request(_with(_t(), text=np.array([TEXTS], object))),
     INVALID, r"'text' must have shape \[None\]"),
    ("speed_rank_2", request(_t(speed=F32([[0.5]]))), INVALID,
     r"'speed' must be a float32 scalar or float32 \[batch\]"),
    ("speed_more_than_batch", request(_t(speed=F32([0.5] * 4))), INVALID,
     r"'speed' must be a float32 scalar or float32 \[batch\]"),
    ("speed_two_for_three", request(_t(speed=F32([0.5] * 2))), INVALID,
     r"one per example, batch 3\), got shape \[2\]"),
    ("negative_dimension", request(_with(_t(), text=_proto(
        np.array(TEXTS, object), object, dims=[-3]))), INVALID,
     r"negative dimension"),
    ("huge_claimed_shape", request(_with(_t(), text=_proto(
        np.array(["a"], object), object, dims=[1 << 30]))), EXHAUSTED,
     r"at most 256 examples"),
    ("unknown_rank", request(_with(_t(), text=_unknown_rank())), INVALID,
     r"'text' has no shape"),
    ("empty_batch", request(_t(texts=[])), INVALID, r"empty batch"),
    # Value counts (TF would repeat the last value to fill the shape).
    ("fewer_values_than_shape", request(_with(_t(), text=_proto(
        np.array(TEXTS[:2], object), object, dims=[5]))), INVALID,
     r"'text': shape \[5\] needs 5 values, the proto carries 2"),
    ("more_values_than_shape", request(_with(_t(), text=_proto(
        np.array(TEXTS, object), object, dims=[1]))), INVALID,
     r"shape \[1\] needs 1 values, the proto carries 3"),
    ("speed_without_values", request(_t(speed=_proto(
        F32(0.5), tensor_content=b""))), INVALID,
     r"'speed': shape \[\] needs 1 values, the proto carries 0"),
    ("speed_short_tensor_content", request(_t(speed=_proto(
        F32([0.5] * 3), tensor_content=F32([0.5, 0.5]).tobytes()))), INVALID,
     r"'speed': shape \[3\] needs 3 values \(12 bytes"),
    ("ids_short_tensor_content", request(_with(_ids(), token_ids=_proto(
        np.int32([[2, 4, 3], [2, 4, 3]]), tensor_content=b"\0" * 20)), _IDS),
     INVALID, r"'token_ids': shape \[2, 3\] needs 6 values \(24 bytes"),
    # Speed values.
    ("speed_nan", request(_t(speed=F32(np.nan))), INVALID,
     r"speed must be a number in \[0, 1\], got nan"),
    ("speed_inf", request(_t(speed=F32(np.inf))), INVALID, r"got inf"),
    ("speed_minus_inf", request(_t(speed=F32(-np.inf))), INVALID,
     r"got -inf"),
    ("speed_negative", request(_t(speed=F32(-0.1))), INVALID,
     r"got -0\.1"),
    ("speed_just_above_1", request(_t(speed=F32(1.0001))), INVALID,
     r"got 1\.000"),
    ("speed_vector_with_nan", request(_t(speed=F32([0.5, np.nan, 0.5]))),
     INVALID, r"speed\[1\] must be a number in \[0, 1\], got nan"),
    ("speed_vector_out_of_range", request(_t(speed=F32([0.5, 0.5, 2.0]))),
     INVALID, r"speed\[2\] must be a number in \[0, 1\], got 2\.0"),
    # Text values.
    ("invalid_utf8", request(_t(texts=["a", b"\xff\xfe"])), INVALID,
     r"'text'\[1\] is not valid UTF-8"),
    ("overlong_utf8", request(_t(texts=[b"\xc0\xaf"])), INVALID,
     r"not valid UTF-8"),
    ("surrogate_utf8", request(_t(texts=[b"\xed\xa0\x80"])), INVALID,
     r"not valid UTF-8"),
    ("truncated_utf8", request(_t(texts=["好".encode()[:2]])), INVALID,
     r"not valid UTF-8"),
    ("empty_text", request(_t(texts=["a", ""])), INVALID,
     r"'text'\[1\] is empty to the tokenizer"),
    ("whitespace_text", request(_t(texts=[" \t\n"])), INVALID,
     r"is empty to the tokenizer"),
    ("ideographic_space_text", request(_t(texts=["\u3000\u3000"])), INVALID,
     r"is empty to the tokenizer"),
    # Limits.
    ("too_many_texts", request(_t(texts=["a"] * 257)), EXHAUSTED,
     r"257 examples in one request; this server accepts at most 256"),
    ("text_too_long", request(_t(texts=["a" * 10_001])), INVALID,
     r"has 10,001 characters; this server accepts at most 10,000"),
    ("text_too_many_bytes", request(_t(texts=["a" * 100_000])), INVALID,
     r"has 100,000 bytes; this server accepts at most 10,000 characters"),
    ("emoji_text_too_long", request(_t(texts=["\U0001f600" * 10_001])),
     INVALID, r"has 10,001 characters"),
    ("request_chars_over_limit", request(_t(texts=["abcd " * 1999] * 21)),
     EXHAUSTED, r"209,895 characters; this server accepts at most 200,000"),
    ("message_over_max_size", lambda: request(_t(texts=[b"a" * (17 << 20)])),
     EXHAUSTED, r"larger than max"),
    # Token-id inputs.
    ("ids_token_out_of_range", request(_ids(token_ids=[[2, 10 ** 6, 3]]),
                                       _IDS), INVALID,
     r"token_ids must lie in \[0, \d+\)"),
    ("ids_negative_token", request(_ids(token_ids=[[2, -1, 3]]), _IDS),
     INVALID, r"token_ids must lie in"),
    ("ids_segment_out_of_range", request(_ids(
        token_ids=[[2, 4, 3]], segment_ids=[[0, 0, 9]]), _IDS), INVALID,
     r"segment_ids must lie in"),
    ("ids_mask_value_2", request(_ids(
        token_ids=[[2, 4, 3]], padding_mask=[[1, 2, 1]]), _IDS), INVALID,
     r"padding_mask must lie in \[0, 2\)"),
    ("ids_mask_negative", request(_ids(
        token_ids=[[2, 4, 3]], padding_mask=[[1, -1, 1]]), _IDS), INVALID,
     r"padding_mask must lie in"),
    ("ids_mask_row_of_zeros", request(_ids(padding_mask=[[1, 1, 1],
                                                         [0, 0, 0]]), _IDS),
     INVALID, r"'padding_mask' row 1 is all zeros"),
    ("ids_zero_columns", request(_ids(token_ids=np.zeros([2, 0])), _IDS),
     INVALID, r"has 0 columns"),
    ("ids_longer_than_the_model", request(_ids(token_ids=[[2] * 2048]), _IDS),
     INVALID, r"longer than max_sequence_length"),
    ("ids_wider_than_the_limit", request(_ids(token_ids=[[2] * 2049]), _IDS),
     INVALID, r"has 2,049 columns; at most 2,048"),
    ("ids_shape_mismatch", request(_ids(
        token_ids=[[2, 4, 3]], padding_mask=[[1, 1]]), _IDS), INVALID,
     r"padding_mask must have the shape of token_ids"),
    ("ids_batch_mismatch", request(_ids(
        token_ids=[[2, 4, 3]], padding_mask=[[1, 1, 1]] * 2), _IDS), INVALID,
     r"disagree on the batch size"),
    ("ids_rank_3", request(_with(_ids(), token_ids=np.int32([[[2, 4, 3]]] * 2)
                                 ), _IDS), INVALID,
     r"'token_ids' must have shape \[None, None\]"),
    ("ids_int64", request(_with(_ids(), segment_ids=np.zeros([2, 3],
                                                             np.int64)), _IDS),
     INVALID, r"'segment_ids' must be DT_INT32, got DT_INT64"),
    ("ids_float", request(_with(_ids(), token_ids=F32([[2, 4, 3]] * 2)), _IDS),
     INVALID, r"got DT_FLOAT"),
    # Request envelope.
    ("output_filter_unknown", request(_t(), raw=lambda r: r.output_filter
                                      .append("logits")), INVALID,
     r"output_filter names \['logits'\]"),
    ("garbage_request_bytes", b"\xff\xff\xff not a protobuf", INVALID,
     r"not a valid Predict message"),
    ("truncated_request_bytes", request(_t())[:-3], INVALID,
     r"not a valid Predict message"),
]
_METHOD_ROWS = [
    ("metadata_without_field", _metadata(fields=()), INVALID,
     r"metadata_field must be \['signature_def'\]", "GetModelMetadata"),
    ("metadata_unknown_field", _metadata(fields=("x",)), INVALID,
     r"metadata_field must be", "GetModelMetadata"),
    ("metadata_unknown_model", _metadata(name="nope"), NOT_FOUND,
     r"model 'nope'", "GetModelMetadata"),
    ("metadata_garbage_bytes", b"\xff\xff", INVALID,
     r"not a valid GetModelMetadata message", "GetModelMetadata"),
    ("classify", b"", UNIMPLEMENTED, r"use Predict", "Classify"),
    ("regress", b"", UNIMPLEMENTED, r"use Predict", "Regress"),
    ("multi_inference", b"", UNIMPLEMENTED, r"use Predict", "MultiInference"),
]
_VALID = [
    _answer_kind("valid_speed_per_example", _t(speed=F32([0.0, 0.5, 1.0]))),
    _answer_kind("valid_speed_shape_1", _t(speed=F32([0.5]))),
    _answer_kind("valid_speed_0", _t(speed=F32(0.0))),
    _answer_kind("valid_speed_1", _t(speed=F32(1.0))),
    _answer_kind("valid_256_texts", _t(texts=(TEXTS * 86)[:256])),
    _answer_kind("valid_text_of_10000_chars", _t(texts=["ab " * 3333 + "a"])),
    _answer_kind("valid_nul_inside_text", _t(texts=["a\x00b"])),
    _answer_kind("valid_ids_padded_with_zeros", _ids(
        token_ids=[[2, 4, 3, 0, 0], [2, 4, 4, 4, 3]],
        padding_mask=[[1, 1, 1, 0, 0], [1] * 5]), "predict_ids"),
    _answer_kind("valid_version_label", _t(), label="stable"),
    _answer_kind("valid_specific_version", _t(), version=1),
]

# TEXT class (issue 21): for each text entry point, generated texts of
# invisible characters by class are refused naming the index; one letter
# among them is answered.
_TEXT_CLASSES = invisible.CLASSES


_invisible = invisible.invisible_text


_TEXT_ROWS = [
    (f"invisible_{name}_text_{signature}",
     request(_t(texts=["a b", _invisible(alphabet, seed)]),
             signature=signature),
     INVALID, r"'text'\[1\] is empty to the tokenizer")
    for seed, (name, alphabet) in enumerate(sorted(_TEXT_CLASSES.items()))
    for signature in ("serving_default", "predict_text")]
_TEXT_VALID = [
    _answer_kind(f"valid_letter_among_{name}_text",
                 _t(texts=[_invisible(alphabet, 1, 3) + "a" +
                           _invisible(alphabet, 2, 3)]))
    for name, alphabet in sorted(_TEXT_CLASSES.items())]

KINDS = ([_error_kind(name, data, codes, pattern)
          for name, data, codes, pattern in _ROWS] +
         _TEXT_ROWS +
         [_error_kind(*row) for row in _METHOD_ROWS] + _VALID + _TEXT_VALID)
