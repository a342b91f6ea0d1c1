"""TF Serving's gRPC API on loopback: the local server and the client.

One module-scoped server serves a base with versions 1 and 2, an export in
progress (`.tmp-*`) and a half-copied version 10; every request has a
deadline, so nothing here can hang. Versions, batching and the access log
have their own files (test_serving_versions.py, test_serving_batching.py).
"""

import os
import re
import select
import signal
import socket
import subprocess
import sys
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from fastbert_tf import testing
from fastbert_tf.data.tokenizer import TextEncoder
from fastbert_tf.export import exporter
from fastbert_tf.serving import client as client_lib
from fastbert_tf.serving import server as server_lib
from fastbert_tf.serving import validation

# Trains, exports or serves models: the `large` tier (Bazel tags it heavy).
pytestmark = pytest.mark.large

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "fastbert"
TEXTS = ["a b z", "c", "z z z d e", "好 书", "q r s t u v w x y"]
SPEEDS = (0.0, 0.3, 1.0)
DEADLINE = 30.0
OUTPUTS = ("exit_layer", "flops", "label", "probabilities", "uncertainty")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def base(tmp_path_factory):
  base = str(tmp_path_factory.mktemp("exports"))
  encoder = TextEncoder(testing.TINY_VOCAB, 16)
  for seed in (3, 7):  # versions 1 and 2: different weights
    exporter.export_saved_model(
        testing.tiny_model(seed=seed, sharpen=8.0, dropout=0.0), encoder, base)
  os.makedirs(os.path.join(base, ".tmp-9-0123abcd"))  # export in progress
  os.makedirs(os.path.join(base, "10"))  # half copied: no saved_model.pb
  return base


@pytest.fixture(scope="module")
def server(base):
  # A 1 MiB request limit, so the over-limit case below stays small.
  with server_lib.LocalServer(base, MODEL, max_message_bytes=1 << 20) as s:
    yield s


@pytest.fixture(scope="module")
def client(server):
  with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as c:
    yield c


@pytest.fixture(scope="module")
def stub(server):
  with grpc.insecure_channel(server.address) as channel:
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def reference(base):
  return tf.saved_model.load(os.path.join(base, "2"))


def _assert_same(got, want):
  assert sorted(got) == sorted(want) == list(OUTPUTS)
  for key in ("label", "exit_layer"):
    np.testing.assert_array_equal(got[key], want[key])
  for key in ("probabilities", "uncertainty", "flops"):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-7)


def _numpy(outputs):
  return {k: v.numpy() for k, v in outputs.items()}


@pytest.mark.parametrize("speed", SPEEDS)
def test_predict_equals_the_loaded_saved_model(client, reference, speed):
  for signature in ("serving_default", "predict_text"):
    want = reference.signatures[signature](text=tf.constant(TEXTS),
                                           speed=tf.constant(speed))
    _assert_same(client.predict(TEXTS, speed, signature), _numpy(want))
  ids = TextEncoder(testing.TINY_VOCAB, 16)(tf.constant(TEXTS))
  want = reference.signatures["predict_ids"](speed=tf.constant(speed), **ids)
  got = client.predict_ids(speed=speed, **{k: v.numpy() for k, v in ids.items()})
  _assert_same(got, _numpy(want))


def test_newest_version_is_served(base, server, client, reference):
  assert server.servable.version == 2
  response = client.predict_response(
      {"text": TEXTS, "speed": np.float32(0.3)}, "predict_text")
  assert (response.model_spec.name, response.model_spec.version.value,
          response.model_spec.signature_name) == (MODEL, 2, "predict_text")
  old = tf.saved_model.load(os.path.join(base, "1")).signatures["predict_text"]
  args = dict(text=tf.constant(TEXTS), speed=tf.constant(0.3))
  new = reference.signatures["predict_text"](**args)["probabilities"].numpy()
  assert not np.allclose(old(**args)["probabilities"].numpy(), new)
  assert client.predict(TEXTS, 0.3, version=2)["probabilities"].tolist() == (
      new.tolist())
  with pytest.raises(client_lib.ServingError, match=r"Specific\(fastbert, 1\)"):
    client.predict(TEXTS, 0.3, version=1)


def test_metadata_lists_the_signatures_and_their_inputs(client, stub):
  signatures = client.metadata()
  inputs = {name: {k: v.dtype for k, v in signatures[name].inputs.items()}
            for name in ("serving_default", "predict_text", "predict_ids")}
  text = {"text": tf.string.as_datatype_enum,
          "speed": tf.float32.as_datatype_enum}
  ids = {k: tf.int32.as_datatype_enum
         for k in ("token_ids", "segment_ids", "padding_mask")}
  assert inputs == {"serving_default": text, "predict_text": text,
                    "predict_ids": {**ids, "speed": text["speed"]}}
  for name in inputs:
    assert sorted(signatures[name].outputs) == list(OUTPUTS)
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  request.model_spec.name = MODEL
  response = stub.GetModelMetadata(request, timeout=DEADLINE)
  assert (response.model_spec.name, response.model_spec.version.value) == (
      MODEL, 2)
  request.ClearField("metadata_field")
  with pytest.raises(grpc.RpcError) as error:
    stub.GetModelMetadata(request, timeout=DEADLINE)
  assert error.value.code() == INVALID


def _proto(value, dtype=None):
  if dtype == tf.string:
    value = np.array(value, dtype=object)
  return tf.make_tensor_proto(value, dtype=dtype)


def _text_inputs(text=("a b",), speed=0.5):
  return {"text": _proto([t.encode() if isinstance(t, str) else t
                          for t in text], tf.string),
          "speed": _proto(speed, tf.float32)}


def _id_inputs(token_ids=((2, 7, 3),), segment_ids=None, padding_mask=None):
  token_ids = np.array(token_ids, np.int32)
  zeros, ones = np.zeros_like(token_ids), np.ones_like(token_ids)
  return {"token_ids": _proto(token_ids),
          "segment_ids": _proto(zeros if segment_ids is None else
                                np.array(segment_ids, np.int32)),
          "padding_mask": _proto(ones if padding_mask is None else
                                 np.array(padding_mask, np.int32)),
          "speed": _proto(0.5, tf.float32)}


def _with(inputs, **changes):
  inputs = dict(inputs)
  for key, value in changes.items():
    if value is None:
      del inputs[key]
    else:
      inputs[key] = value
  return inputs


def _claiming(proto, size):
  """proto with its first dimension rewritten to `size`, values unchanged."""
  proto.tensor_shape.dim[0].size = size
  return proto


def _widening(proto):
  """proto with its second dimension one larger, values unchanged."""
  proto.tensor_shape.dim[1].size += 1
  return proto


# (case id, signature, inputs, code, message pattern, model name, version).
BAD_REQUESTS = [
    ("unknown_model", "serving_default", _text_inputs(), NOT_FOUND,
     r"model 'nope'.*serves 'fastbert'", "nope", None),
    ("unknown_version", "serving_default", _text_inputs(), NOT_FOUND,
     r"Specific\(fastbert, 5\); loaded versions are \[2\]", MODEL, 5),
    ("unknown_signature", "classify", _text_inputs(), NOT_FOUND,
     r'signature key "classify" not found', MODEL, None),
    ("missing_input", "serving_default", _with(_text_inputs(), speed=None),
     INVALID, r"missing \['speed'\]", MODEL, None),
    ("unexpected_input", "serving_default",
     _with(_text_inputs(), text_b=_proto([b"x"], tf.string)), INVALID,
     r"unexpected \['text_b'\]", MODEL, None),
    ("speed_dtype", "serving_default",
     _with(_text_inputs(), speed=_proto(np.float64(0.5))), INVALID,
     r"'speed' must be DT_FLOAT, got DT_DOUBLE", MODEL, None),
    ("text_dtype", "predict_text",
     _with(_text_inputs(), text=_proto(np.int32([1]))), INVALID,
     r"'text' must be DT_STRING, got DT_INT32", MODEL, None),
    ("speed_size", "serving_default", _text_inputs(speed=[0.5, 0.5]), INVALID,
     r"'speed' must be a float32 scalar or float32 \[batch\] \(one per "
     r"example, batch 1\), got shape \[2\]", MODEL, None),
    ("speed_rank", "serving_default", _text_inputs(speed=[[0.5]]), INVALID,
     r"'speed' must be a float32 scalar or float32 \[batch\]", MODEL, None),
    ("speed_vector_nan", "serving_default",
     _text_inputs(text=("a", "b"), speed=[0.5, float("nan")]), INVALID,
     r"speed\[1\] must be a number in \[0, 1\], got nan", MODEL, None),
    ("empty_text", "serving_default", _text_inputs(text=("a", "")), INVALID,
     r"'text'\[1\] is empty to the tokenizer", MODEL, None),
    ("whitespace_text", "predict_text", _text_inputs(text=(" \t\u3000",)),
     INVALID, r"'text'\[0\] is empty to the tokenizer", MODEL, None),
    # Issue 21, reproduction 3: these were answered from [CLS] [SEP].
    ("zero_width_text", "serving_default",
     _text_inputs(text=("a", "\u200b\u200c\ufeff")), INVALID,
     r"'text'\[1\] is empty to the tokenizer", MODEL, None),
    ("control_text", "serving_default", _text_inputs(text=("\x01\x1b\x7f",)),
     INVALID, r"'text'\[0\] is empty to the tokenizer", MODEL, None),
    ("bidi_text", "predict_text", _text_inputs(text=("\u200e\u202e\u2066",)),
     INVALID, r"'text'\[0\] is empty to the tokenizer", MODEL, None),
    ("combining_text", "serving_default",
     _text_inputs(text=("b", "c", "\u0301\u0308")), INVALID,
     r"'text'\[2\] is empty to the tokenizer", MODEL, None),
    ("padding_mask_row_of_zeros", "predict_ids",
     _id_inputs(token_ids=[[2, 7, 3], [2, 8, 3]],
                padding_mask=[[1, 1, 1], [0, 0, 0]]), INVALID,
     r"'padding_mask' row 1 is all zeros", MODEL, None),
    ("fewer_values_than_shape", "serving_default",  # says 5, carries 2
     _with(_text_inputs(), text=_claiming(_proto([b"a", b"b"], tf.string), 5)),
     INVALID, r"'text': shape \[5\] needs 5 values, the proto carries 2",
     MODEL, None),
    ("short_tensor_content", "predict_ids",  # says [1, 4], carries 3 ints
     _with(_id_inputs(), token_ids=_widening(_proto(np.int32([[2, 7, 3]])))),
     INVALID, r"'token_ids': shape \[1, 4\] needs 4 values \(16 bytes",
     MODEL, None),
    ("too_many_texts", "serving_default", _text_inputs(text=("a",) * 257),
     grpc.StatusCode.RESOURCE_EXHAUSTED,
     r"257 examples in one request; this server accepts at most 256", MODEL,
     None),
    ("request_over_char_limit", "serving_default",
     _text_inputs(text=("abcd " * 1999,) * 21),
     grpc.StatusCode.RESOURCE_EXHAUSTED,
     r"hold 209,895 characters; this server accepts at most 200,000", MODEL,
     None),
    ("unknown_version_label", "serving_default", _text_inputs(), INVALID,
     r"Unrecognized servable version label: canary", MODEL, "canary"),
    ("text_rank", "serving_default",
     _with(_text_inputs(), text=_proto([[b"a", b"b"]], tf.string)), INVALID,
     r"'text' must have shape \[None\] \(rank 1\), got \[1, 2\]", MODEL, None),
    ("ids_rank", "predict_ids",
     _with(_id_inputs(), token_ids=_proto(np.int32([2, 7, 3]))), INVALID,
     r"'token_ids' must have shape \[None, None\]", MODEL, None),
    ("ids_dtype", "predict_ids",
     _with(_id_inputs(), segment_ids=_proto(np.int64([[0, 0, 0]]))), INVALID,
     r"'segment_ids' must be DT_INT32, got DT_INT64", MODEL, None),
    ("ids_batch_mismatch", "predict_ids",
     _id_inputs(padding_mask=[[1, 1, 1], [1, 1, 1]]), INVALID,
     r"disagree on the batch size", MODEL, None),
    ("ids_shape_mismatch_in_graph", "predict_ids",
     _id_inputs(padding_mask=[[1, 1]]), INVALID,
     r"padding_mask must have the shape of token_ids", MODEL, None),
    ("token_id_out_of_range_in_graph", "predict_ids",
     _id_inputs(token_ids=[[2, 99, 3]]), INVALID,
     r"token_ids must lie in \[0, 34\)", MODEL, None),
    ("sequence_too_long_in_graph", "predict_ids",
     _id_inputs(token_ids=[[2] * 40]), INVALID,
     r"longer than max_sequence_length 32", MODEL, None),
    ("no_columns", "predict_ids", _id_inputs(token_ids=np.zeros([2, 0])),
     INVALID, r"has 0 columns", MODEL, None),
    ("speed_above_1", "serving_default", _text_inputs(speed=1.5), INVALID,
     r"speed must be a number in \[0, 1\], got 1.5", MODEL, None),
    ("speed_negative", "predict_ids",
     _with(_id_inputs(), speed=_proto(-0.1, tf.float32)), INVALID,
     r"speed must be a number in \[0, 1\], got -0.1", MODEL, None),
    ("speed_nan", "serving_default", _text_inputs(speed=float("nan")),
     INVALID, r"speed must be a number in \[0, 1\], got nan", MODEL, None),
    ("invalid_utf8", "predict_text", _text_inputs(text=("ok", b"\xff\xfe")),
     INVALID, r"'text'\[1\] is not valid UTF-8", MODEL, None),
    ("more_values_than_shape", "serving_default",  # claims 1, carries 2
     _with(_text_inputs(), text=_claiming(_proto([b"a", b"b"], tf.string), 1)),
     INVALID, r"'text': shape \[1\] needs 1 values, the proto carries 2",
     MODEL, None),
    ("huge_claimed_shape", "serving_default",  # 1 value "broadcast" to 2^30
     _with(_text_inputs(), text=_claiming(_proto([b"a"], tf.string), 1 << 30)),
     grpc.StatusCode.RESOURCE_EXHAUSTED, r"accepts at most 256 examples",
     MODEL, None),
    ("request_over_size_limit", "serving_default",
     _text_inputs(text=("a " * (1 << 20),)), grpc.StatusCode.RESOURCE_EXHAUSTED,
     r"larger than max", MODEL, None),
]


@pytest.mark.parametrize("signature,inputs,code,pattern,model,version",
                         [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_a_clear_status_and_the_server_keeps_serving(
    stub, client, signature, inputs, code, pattern, model, version):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  if isinstance(version, str):
    request.model_spec.version_label = version
  elif version is not None:
    request.model_spec.version.value = version
  for key, proto in inputs.items():
    request.inputs[key].CopyFrom(proto)
  with pytest.raises(grpc.RpcError) as error:
    stub.Predict(request, timeout=DEADLINE)
  assert error.value.code() == code, error.value.details()
  assert re.search(pattern, error.value.details()), error.value.details()
  assert client.predict(["a b"], 0.5)["label"].shape == (1,)


def test_pair_model_takes_text_b(tmp_path):
  model = testing.tiny_model(seed=3, sharpen=8.0, dropout=0.0)
  encoder = TextEncoder(testing.TINY_VOCAB, 16, text_pair=True)
  path = exporter.export_saved_model(model, encoder, str(tmp_path))
  a, b = ["a b", "c d e", "好"], ["z", "y x", "书 书"]
  want = tf.saved_model.load(path).signatures["serving_default"](
      text=tf.constant(a), text_b=tf.constant(b), speed=tf.constant(0.3))
  with server_lib.LocalServer(str(tmp_path), MODEL, warmup=False) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as client:
      _assert_same(client.predict(a, 0.3, text_b=b), _numpy(want))
      with pytest.raises(client_lib.ServingError,
                         match=r"INVALID_ARGUMENT: .*missing \['text_b'\]"):
        client.predict(a, 0.3)
      with pytest.raises(client_lib.ServingError,
                         match="disagree on the batch size"):
        client.predict(a, 0.3, text_b=b[:2])


def test_empty_batch_is_invalid_argument(client):
  for call in (lambda: client.predict([], 0.5),
               lambda: client.predict_ids(*[np.zeros([0, 3], np.int32)] * 3,
                                          0.5)):
    with pytest.raises(client_lib.ServingError,
                       match=r"INVALID_ARGUMENT: empty batch"):
      call()
  assert client.predict(["a b"], 0.5)["label"].shape == (1,)


def test_100k_character_text_is_refused_unless_the_limit_allows_it(
    client, base):
  text = " ".join("abcdefghij"[i % 10] for i in range(50_000))  # 99,999 chars
  with pytest.raises(client_lib.ServingError,
                     match=r"INVALID_ARGUMENT: input 'text'\[1\] has 99,999 "
                     r"bytes; this server accepts at most 10,000 characters"):
    client.predict(["a", text], 0.5)
  assert client.predict(["a b"], 0.5)["label"].shape == (1,)
  # With the limit raised the text is served: the tokenizer truncates it, so
  # the answer is that of its first max_seq_length tokens.
  with server_lib.LocalServer(base, MODEL, warmup=False,
                              limits=validation.RequestLimits(
                                  max_text_chars=200_000)) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as big:
      _assert_same(big.predict([text], 0.5), big.predict([text[:100]], 0.5))


def test_concurrent_requests_all_succeed(client):
  want = client.predict(TEXTS, 0.3)
  with futures.ThreadPoolExecutor(4) as pool:
    results = list(pool.map(lambda _: client.predict(TEXTS, 0.3), range(16)))
  for got in results:
    _assert_same(got, want)


def test_per_sample_speed_equals_each_request_alone(client, reference):
  """speed float32 [batch]: each text answers as if sent alone at its own
  speed (the per-sample contract, through gRPC)."""
  speeds = [0.0, 1.0, 0.3, 1.0, 0.0]
  got = client.predict(TEXTS, speeds)
  assert len(set(got["exit_layer"].tolist())) >= 2
  for i, (text, speed) in enumerate(zip(TEXTS, speeds)):
    alone = reference.signatures["serving_default"](
        text=tf.constant([text]), speed=tf.constant(speed))
    _assert_same({k: v[i:i + 1] for k, v in got.items()}, _numpy(alone))


def test_malformed_request_bytes_are_invalid_argument(server, client):
  with grpc.insecure_channel(server.address) as channel:
    predict = channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as error:
      predict(b"\xff\xff\xff not a protobuf", timeout=DEADLINE)
  assert error.value.code() == INVALID, error.value.details()
  assert "not a valid Predict message" in error.value.details()
  assert client.predict(["a b"], 0.5)["label"].shape == (1,)


def test_access_log_has_one_line_per_request_failed_ones_too(base, tmp_path):
  path = tmp_path / "access.log"
  with server_lib.LocalServer(base, MODEL, warmup=False,
                              access_log=str(path)) as server:
    with client_lib.FastBertClient(server.address, MODEL, DEADLINE) as c:
      c.predict(["a b", "c"], [0.1, 0.8], "predict_text")
      with pytest.raises(client_lib.ServingError):
        c.predict(["a", " "], 0.5)
      with pytest.raises(client_lib.ServingError):
        client_lib.FastBertClient(server.address, "nope").predict(["a"], 0.5)
  lines = path.read_text().splitlines()
  assert len(lines) == 3, lines
  peer = r"peer=ipv[46]:\S+:\d+"
  assert re.fullmatch(
      r"\S+Z " + peer + r" method=Predict model=fastbert version=2 "
      r"signature=predict_text batch=2 speed=0\.1\.\.0\.8\(n=2\) "
      r"latency_ms=[0-9.]+ status=OK", lines[0]), lines[0]
  assert re.fullmatch(
      r"\S+Z " + peer + r" method=Predict model=fastbert version=2 "
      r"signature=serving_default batch=2 speed=0\.5 latency_ms=[0-9.]+ "
      r"status=INVALID_ARGUMENT error=\"input 'text'\[1\] is empty.*\"",
      lines[1]), lines[1]
  assert re.fullmatch(
      r"\S+Z " + peer + r" method=Predict model=nope version=- signature=- "
      r"batch=- speed=- latency_ms=[0-9.]+ status=NOT_FOUND error=.*",
      lines[2]), lines[2]


def test_client_does_not_import_tensorflow():
  """The client CLI and library load the TF Serving protos without
  TensorFlow (seconds per call otherwise); TensorFlow still imports fine
  after them in the same process."""
  code = (
      "import sys\n"
      "from fastbert_tf.serving import client\n"
      "assert not any(m == 'tensorflow.python' or m.startswith("
      "('tensorflow.python.', 'keras')) for m in sys.modules), 'TF imported'\n"
      "proto = client.protos.make_tensor_proto([[1, 2]])\n"
      "import tensorflow as tf\n"
      "assert tf.make_ndarray(proto).tolist() == [[1, 2]]\n"
      "assert (tf.constant([1.0]) * 2).numpy().tolist() == [2.0]\n"
      "print('ok')\n")
  run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, text=True,
                       capture_output=True, timeout=300,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert run.returncode == 0 and run.stdout == "ok\n", run.stderr[-2000:]


@pytest.mark.parametrize("value", [
    np.float32(0.5), np.array([0.1, 0.9], np.float32), np.int32([[1, 2], [3, 4]]),
    np.int64([5]), np.float64([[1.5]]), np.array([True, False]),
    np.array([b"a", "\u597d".encode(), b""], dtype=object),
    np.zeros([0, 3], np.int32)])
def test_protos_agree_with_tensorflow_both_ways(value):
  from fastbert_tf.serving import protos  # pylint: disable=g-import-not-at-top
  ours = protos.make_tensor_proto(value, value.dtype)
  want = tf.string if value.dtype == object else tf.as_dtype(value.dtype)
  assert ours.dtype == want.as_datatype_enum
  np.testing.assert_array_equal(tf.make_ndarray(ours), value)
  got = protos.make_ndarray(tf.make_tensor_proto(value))
  assert got.shape == value.shape and got.dtype == value.dtype
  np.testing.assert_array_equal(got, value)
  # Without a dtype a numpy value keeps its own (a float64 speed must reach
  # the server as DT_DOUBLE and be refused), Python numbers get TF's.
  assert protos.make_tensor_proto(value).dtype == ours.dtype
  assert protos.make_tensor_proto(0.5).dtype == tf.float32.as_datatype_enum
  assert protos.make_tensor_proto([[1]]).dtype == tf.int32.as_datatype_enum


def test_client_cli_requires_speed(server):
  run = _run_cli(f"--server={server.address}", f"--model_name={MODEL}", "a b")
  assert run.returncode == 1
  assert "--speed must have a value" in run.stderr, run.stderr[-1000:]


def test_other_methods_are_unimplemented(stub):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = MODEL
  with pytest.raises(grpc.RpcError) as error:
    stub.Classify(request, timeout=DEADLINE)
  assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
  assert "use Predict" in error.value.details()


def test_client_reports_deadline_exceeded():
  # A socket that accepts connections but never speaks HTTP/2.
  with socket.socket() as silent:
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    with client_lib.FastBertClient(address, MODEL, timeout=1.0) as client:
      with pytest.raises(client_lib.ServingError) as error:
        client.predict(["a"], 0.5)
  assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
  assert str(error.value) == (
      f"DEADLINE_EXCEEDED: no answer from {address} within 1 s")


def _run_cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "fastbert_tf.serving.client", *args], cwd=ROOT,
      capture_output=True, text=True, timeout=120,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def test_client_cli_prints_one_line_per_input(server, client):
  texts = ["a b z", "好 书"]
  run = _run_cli(f"--server={server.address}", f"--model_name={MODEL}",
                 "--speed=0.3", *texts)
  assert run.returncode == 0, run.stderr
  lines = run.stdout.splitlines()
  want = client.predict(texts, 0.3)
  assert lines == [client_lib.format_result(want, i, t)
                   for i, t in enumerate(texts)]
  assert re.fullmatch(r"label=\d probabilities=\[[0-9., ]+\] exit_layer=\d+ "
                      r"uncertainty=[0-9.]+ text='a b z'", lines[0])


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_client_cli_unreachable_server_is_one_clear_error():
  address = f"127.0.0.1:{_free_port()}"
  run = _run_cli(f"--server={address}", "--timeout=5", "--speed=0.5", "a b")
  assert run.returncode == 1
  assert "Traceback" not in run.stderr
  assert run.stdout == ""
  last = run.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: UNAVAILABLE: server not reachable at "
                         f"{address}"), run.stderr


def test_server_cli_serves_then_stops_on_sigterm(base, tmp_path):
  with open(tmp_path / "server.log", "w") as log:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastbert_tf.serving.server",
         f"--model_base_path={base}", f"--model_name={MODEL}", "--port=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  try:
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    match = re.fullmatch(r"serving fastbert version 2 at (127\.0\.0\.1:\d+)\n",
                         line)
    assert match, (line, (tmp_path / "server.log").read_text())
    with client_lib.FastBertClient(match.group(1), MODEL, DEADLINE) as client:
      assert client.predict(["a b"], 1.0)["label"].shape == (1,)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait(timeout=30)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
