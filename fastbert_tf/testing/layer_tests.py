"""Checks every layer and model of the package must pass (keras-hub style).

Plain functions that raise AssertionError, for pytest tests:

  run_layer_test          build, eager and symbolic calls, weight counts,
                          gradients, then the two checks below
  run_serialization_test  get_config / from_config and serialize /
                          deserialize round trips, constructor kwargs ==
                          config, every sublayer reloadable in safe mode
  run_precision_test      a dtype policy reaches every sublayer; outputs in
                          the compute dtype, or float32 where promised
  run_model_saving_test   `.keras` save and load (a layer is wrapped in a
                          functional model) give the same outputs

`input_data` is what the layer is called with: a dict whose keys are all
arguments of `call()` is passed as keyword arguments (StudentClassifier:
`hidden`, `padding_mask`), any other dict or array as the one positional
input (FastBertClassifier and FastBertBackbone take the `inputs` dict).

Example:

>>> layer_tests.run_layer_test(
...     StudentClassifier, dict(num_classes=3, hidden_dim=8, num_heads=2),
...     dict(hidden=hidden, padding_mask=mask), expected_output_shape=(4, 3),
...     expected_num_trainable_weights=14, float32_outputs=True,
...     float32_sublayers=("logits_dense",))
"""

import inspect
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

# keras-hub's set: two mixed policies and a pure low-precision one.
POLICIES = ("mixed_float16", "mixed_bfloat16", "bfloat16")
# Layer arguments every config carries besides the constructor's own.
_BASE_CONFIG_KEYS = {"name", "trainable", "dtype"}


def call_layer(layer, input_data, **kwargs):
  """Calls `layer` as the module docstring says; returns its output."""
  if isinstance(input_data, dict):
    params = inspect.signature(layer.call).parameters
    if all(k in params for k in input_data):
      return layer(**input_data, **kwargs)
  return layer(input_data, **kwargs)


def instantiate(cls, init_kwargs, dtype=None):
  """`cls(**init_kwargs)`, each layer argument (a task's backbone) cloned
  from its config so that instances share no weights; `dtype` (optional)
  reaches the clones too: a task runs under its backbone's policy."""
  kwargs = {}
  for key, value in init_kwargs.items():
    if isinstance(value, keras.layers.Layer):
      config = value.get_config()
      if dtype is not None:
        config["dtype"] = dtype
      value = type(value).from_config(config)
    kwargs[key] = value
  if dtype is not None:
    kwargs["dtype"] = dtype
  return cls(**kwargs)


def _json(config):
  return json.dumps(config, sort_keys=True)


def _config_value(value):
  """How a constructor argument appears in get_config()."""
  if isinstance(value, keras.layers.Layer):
    return keras.saving.serialize_keras_object(value)
  return value


def _expected_shapes(expected):
  """A shape tuple is a leaf; lists and dicts of them keep their structure."""
  if isinstance(expected, dict):
    return {k: _expected_shapes(v) for k, v in expected.items()}
  if isinstance(expected, list):
    return [_expected_shapes(v) for v in expected]
  return tuple(expected)


def _flat(output):
  return keras.tree.flatten(output)


def _shapes(output):
  return keras.tree.map_structure(lambda t: tuple(t.shape), output)


def _is_float(dtype):
  return "float" in keras.backend.standardize_dtype(dtype)


def run_serialization_test(instance):
  """Config and serialization round trips of an (unbuilt) instance.

  Checks that `from_config(get_config())` and
  `deserialize(json(serialize()))` give the same config and the same
  attributes, that every config key is a constructor argument (the house
  rule: constructor kwargs are the config), and that every sublayer's own
  config reloads in Keras' safe mode (a lambda in a config does not).
  """
  cls = type(instance)
  config = instance.get_config()
  config_json = json.dumps(config, sort_keys=True)
  revived = cls.from_config(config)
  assert json.dumps(revived.get_config(), sort_keys=True) == config_json
  assert set(dir(revived)) == set(dir(instance)), (
      set(dir(revived)) ^ set(dir(instance)))

  params = inspect.signature(cls.__init__).parameters
  not_kwargs = set(config) - _BASE_CONFIG_KEYS - set(params)
  assert not not_kwargs, f"{cls.__name__} config keys {not_kwargs} are not " \
      "constructor arguments"

  serialized = json.dumps(keras.saving.serialize_keras_object(instance))
  revived = keras.saving.deserialize_keras_object(json.loads(serialized))
  assert type(revived) is cls
  assert json.dumps(revived.get_config(), sort_keys=True) == config_json

  for sublayer in instance._flatten_layers(include_self=False):  # pylint: disable=protected-access
    text = json.dumps(keras.saving.serialize_keras_object(sublayer))
    again = keras.saving.deserialize_keras_object(json.loads(text),
                                                  safe_mode=True)
    assert again.get_config() == sublayer.get_config(), sublayer.name


def run_precision_test(cls, init_kwargs, input_data, float32_outputs=False,
                       float32_sublayers=(), policies=POLICIES):
  """The dtype policy reaches every sublayer; outputs have the right dtype.

  Args:
    cls: the layer or model class.
    init_kwargs: dict, constructor kwargs without `dtype` (layer arguments
      are cloned under each policy: see `instantiate`).
    input_data: the call's input (see the module docstring).
    float32_outputs: the layer promises float32 outputs whatever the policy
      (logits: softmax, losses and the exit criteria read them).
    float32_sublayers: names of sublayers that stay float32 by design.
    policies: the policy names to try.
  """
  for name in policies:
    policy = keras.DTypePolicy(name)
    layer = instantiate(cls, init_kwargs, dtype=policy)
    output = call_layer(layer, input_data)
    want = "float32" if float32_outputs else policy.compute_dtype
    for tensor in _flat(output):
      if _is_float(tensor.dtype):
        assert keras.backend.standardize_dtype(tensor.dtype) == want, (
            name, tensor.dtype)
    for sublayer in layer._flatten_layers():  # pylint: disable=protected-access
      if sublayer.name in float32_sublayers:
        assert sublayer.compute_dtype == "float32", (name, sublayer.name)
        variable_dtype = "float32"
      else:
        assert sublayer.compute_dtype == policy.compute_dtype, (
            name, sublayer.name, sublayer.compute_dtype)
        variable_dtype = policy.variable_dtype
      # The sublayer's own variables; nested ones are checked on their own.
      own = sublayer._trainable_variables + sublayer._non_trainable_variables  # pylint: disable=protected-access
      for weight in own:
        if _is_float(weight.dtype):
          assert keras.backend.standardize_dtype(weight.dtype) == (
              variable_dtype), (name, weight.path, weight.dtype)


def _gradients(layer, input_data):
  """Gradients of a scalar of the outputs w.r.t. every trainable weight."""
  with tf.GradientTape() as tape:
    output = call_layer(layer, input_data, training=True)
    loss = tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float32)))
                     for t in _flat(output)])
  return tape.gradient(loss, layer.trainable_weights)


def run_layer_test(cls, init_kwargs, input_data, expected_output_shape,
                   expected_num_trainable_weights,
                   expected_num_non_trainable_weights=0,
                   float32_outputs=False, float32_sublayers=(),
                   run_precision_check=True):
  """The basic checks of a layer or model, keras-hub's run_layer_test.

  Args:
    cls: the layer or model class.
    init_kwargs: dict of constructor kwargs.
    input_data: the call's input (see the module docstring).
    expected_output_shape: tuple, or a list/dict of tuples like the output.
    expected_num_trainable_weights: int.
    expected_num_non_trainable_weights: int.
    float32_outputs, float32_sublayers: as for run_precision_test; without
      float32_outputs, float outputs are in the layer's compute dtype.
    run_precision_check: also run run_precision_test.
  """
  layer = instantiate(cls, init_kwargs)
  run_serialization_test(layer)
  config = layer.get_config()
  for key, value in init_kwargs.items():
    if key != "dtype":  # the config holds the policy object, not its name
      assert key in config and config[key] == _config_value(value), (
          f"{cls.__name__}: kwarg {key}={value!r} is not in the config "
          f"({config.get(key)!r})")

  def check(layer, output):
    assert layer.built
    assert len(layer.trainable_weights) == expected_num_trainable_weights, (
        len(layer.trainable_weights))
    assert len(layer.non_trainable_weights) == (
        expected_num_non_trainable_weights)
    assert _shapes(output) == _expected_shapes(expected_output_shape), (
        _shapes(output))
    want = "float32" if float32_outputs else layer.compute_dtype
    for tensor in _flat(output):
      if _is_float(tensor.dtype):
        assert keras.backend.standardize_dtype(tensor.dtype) == want

  # Symbolic call: builds from KerasTensors, as in a functional model.
  layer = instantiate(cls, init_kwargs)
  symbolic = keras.tree.map_structure(
      lambda x: keras.KerasTensor(np.shape(x), str(np.asarray(x).dtype)),
      input_data)
  check(layer, call_layer(layer, symbolic))

  layer = instantiate(cls, init_kwargs)
  check(layer, call_layer(layer, input_data))
  # Training check: every trainable weight is wired to the outputs.
  grads = _gradients(layer, input_data)
  for weight, grad in zip(layer.trainable_weights, grads):
    assert grad is not None, f"{weight.path} gets no gradient"
    assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())), (
        weight.path)
  assert sum(float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g))))
             for g in grads) > 0.0

  if run_precision_check:
    run_precision_test(cls, init_kwargs, input_data, float32_outputs,
                       float32_sublayers)


def _functional(layer, input_data):
  """A functional keras.Model around a layer, with one Input per tensor."""
  def make_input(name):
    def fn(x):
      x = np.asarray(x)
      return keras.Input(shape=x.shape[1:], dtype=str(x.dtype), name=name)
    return fn

  if isinstance(input_data, dict):
    inputs = {k: make_input(k)(v) for k, v in input_data.items()}
  else:
    inputs = make_input("inputs")(input_data)
  return keras.Model(inputs, call_layer(layer, inputs))


def run_model_saving_test(cls, init_kwargs, input_data, atol=1e-6,
                          path=None):
  """`.keras` save and load reproduce the outputs (inference mode).

  A keras.Model is saved as it is; a layer is first wrapped in a
  functional model, so its class must deserialize from its config.
  Loading uses Keras' default safe mode: a config holding a lambda fails.

  Args:
    cls: the layer or model class (registered serializable).
    init_kwargs: dict of constructor kwargs.
    input_data: the call's input (see the module docstring).
    atol: float, tolerance between the outputs before and after.
    path: optional directory for the file (a temporary one by default).
  """
  instance = instantiate(cls, init_kwargs)
  call_layer(instance, input_data)  # builds it
  model = (instance if isinstance(instance, keras.Model) else
           _functional(instance, input_data))
  want = call_layer(model, input_data, training=False)
  with tempfile.TemporaryDirectory(dir=path) as tmp:
    filename = os.path.join(tmp, "model.keras")
    model.save(filename)
    restored = keras.models.load_model(filename)
  assert type(restored) is type(model)
  # Compared as json: a nested config read back holds lists for tuples.
  if model is instance:
    assert _json(restored.get_config()) == _json(instance.get_config())
  else:
    inner = [l for l in restored.layers if isinstance(l, cls)]
    assert len(inner) == 1 and (
        _json(inner[0].get_config()) == _json(instance.get_config()))
  got = call_layer(restored, input_data, training=False)
  for a, b in zip(_flat(want), _flat(got)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol)
  return restored
