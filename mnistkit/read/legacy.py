"""Repair the model configs that Keras 2 and tf.keras stored in .h5 files, for Keras 3.

Pure JSON to JSON: nothing here imports Keras or runs anything a file holds. TensorFlow ops
stored as layers are the job of :mod:`mnistkit.read.legacy_ops`. Each repair
undoes one way in which an older Keras wrote a config that Keras 3 reads differently or
refuses; what cannot be repaired raises :class:`LegacyError` with the reason in words.
"""

from __future__ import annotations

import copy
import re

from mnistkit.read.legacy_ops import LegacyError, replace_tf_op

# Keys whose values only matter for training (initial values, penalties, weight limits):
# a loaded model has its weights, so dropping them removes every quirk of their old configs
# (a "dtype" in GlorotUniform, "distribution": "normal", removed classes) at no cost.
_TRAINING_ONLY = re.compile(r".*_(initializer|regularizer|constraint)$")

# Arguments that Keras 2 layers stored and that Keras 3 layers no longer take.
_DROPPED_ARGS = {
    "BatchNormalization": ("fused", "renorm", "renorm_clipping", "renorm_momentum",
                           "virtual_batch_size", "adjustment"),
    "InputLayer": ("ragged",),
    "LSTM": ("time_major",), "GRU": ("time_major",), "SimpleRNN": ("time_major",),
}

# Keras 1 / early Keras 2 class names that Keras 3 knows under another name.
_RENAMED = {"Convolution2D": "Conv2D", "Convolution1D": "Conv1D", "Deconvolution2D":
            "Conv2DTranspose", "AtrousConvolution2D": "Conv2D", "Model": "Functional"}

# Activations that tf.keras 2.0-2.3 stored under the name of the TensorFlow function passed
# (activation=tf.nn.softmax was saved as "softmax_v2").
_ACTIVATIONS = {"softmax_v2": "softmax", "log_softmax_v2": "log_softmax"}


def repair_config(config: dict, keras_version: str = "2") -> dict:
    """A Keras 3-loadable copy of a Keras 2 / tf.keras ``model_config`` (already parsed)."""
    if keras_version.startswith("1."):
        raise LegacyError(f"saved by Keras {keras_version} (2016), whose layer configs (nb_filter, "
                          "border_mode, Theano kernels) Keras 3 cannot read")
    config = copy.deepcopy(config)
    _repair_model(config)
    return config


def stored_code(config) -> list[str]:
    """Names of the layers that hold Python code (``Lambda``) anywhere in ``config``, also
    inside wrappers (TimeDistributed, Bidirectional) and nested models."""
    found = []
    if isinstance(config, dict):
        if config.get("class_name") == "Lambda":
            inner = config.get("config")
            found.append(str(inner.get("name", "?")) if isinstance(inner, dict) else "?")
        for value in config.values():
            found += stored_code(value)
    elif isinstance(config, list):
        for value in config:
            found += stored_code(value)
    return found


def _repair_model(model: dict) -> None:
    model["class_name"] = _RENAMED.get(model.get("class_name"), model.get("class_name"))
    if model["class_name"] == "Sequential":
        if isinstance(model.get("config"), list):  # Keras <= 2.2 stored the bare layer list
            model["config"] = {"name": "sequential", "layers": model["config"]}
        layers = model["config"]["layers"]
        _give_sequential_an_input(model["config"], layers)
        for layer in layers:
            _repair_layer(layer)
    elif model["class_name"] == "Functional":
        # Input shapes, for ops whose result's shape Keras 3 must be told (tf.expand_dims)
        inputs = {layer.get("config", {}).get("name"): layer.get("config", {}).get(
            "batch_input_shape", layer.get("config", {}).get("batch_shape"))
            for layer in model["config"]["layers"] if layer.get("class_name") == "InputLayer"}
        for layer in model["config"]["layers"]:
            _repair_layer(layer, inputs)


def _give_sequential_an_input(config: dict, layers: list[dict]) -> None:
    """Keras 2 kept the input's shape on the first layer (``batch_input_shape``); Keras 3
    turns that into an input shape that still has the batch axis. An InputLayer is exact."""
    if not layers or layers[0].get("class_name") == "InputLayer":
        return
    first = layers[0].setdefault("config", {})
    shape = first.pop("batch_input_shape", None)
    if shape is None and config.get("build_input_shape"):
        shape = config["build_input_shape"]  # tf.keras 2.3+ Sequential without input_shape
    if shape is None:
        return
    dtype = first.get("dtype") if isinstance(first.get("dtype"), str) else "float32"
    layers.insert(0, {"class_name": "InputLayer",
                      "config": {"batch_shape": [None, *shape[1:]], "dtype": dtype,
                                 "name": f"{first.get('name', 'layer')}_input"}})


def _repair_layer(layer: dict, inputs: dict | None = None) -> None:
    name = _RENAMED.get(layer.get("class_name"), layer.get("class_name"))
    layer["class_name"] = name
    if name in ("Sequential", "Functional"):  # a model used as a layer
        _repair_model(layer)
        return
    config = layer.setdefault("config", {})
    for key in [key for key in config if _TRAINING_ONLY.match(key)]:
        del config[key]
    for key in _DROPPED_ARGS.get(name, ()):
        config.pop(key, None)
    if isinstance(config.get("dtype"), dict):  # a mixed-precision Policy: its name is the dtype
        policy = config["dtype"].get("config", {})
        config["dtype"] = policy.get("name", "float32")
    if name == "InputLayer" and "batch_input_shape" in config:
        # A model that fit() built keeps its training batch size here (e.g. 32): it was never
        # meant as a limit, and Keras 3 would hold every batch to it.
        shape = config.pop("batch_input_shape")
        config["batch_shape"] = [None, *shape[1:]] if isinstance(shape, list) and shape else shape
    else:  # the model's input is an InputLayer now; a copy of its shape here only misleads
        config.pop("batch_input_shape", None)
    if isinstance(config.get("activation"), str):
        config["activation"] = _ACTIVATIONS.get(config["activation"], config["activation"])
    if name == "ThresholdedReLU":  # removed in Keras 3; ReLU with a threshold is the same
        layer["class_name"] = "ReLU"
        config["threshold"] = config.pop("theta", 1.0)
    for key in ("layer", "backward_layer"):  # Bidirectional, TimeDistributed: a layer inside
        if isinstance(config.get(key), dict):
            _repair_layer(config[key])
    if "axis" in config:
        _keep_axis(layer)
    if name in ("TFOpLambda", "TensorFlowOpLayer"):
        replace_tf_op(layer, inputs or {})


def _keep_axis(layer: dict) -> None:
    """Keras 3's reader of Keras 2 layer configs keeps an ``axis`` only when it is one number
    (``3`` or ``[3]``) and silently drops any other, so that the layer falls back to its
    default -1: a Normalization over all pixels (Keras 2 wrote ``[]``) or a LayerNormalization
    over several axes would compute something else. Keras 3's own reader keeps every axis, so
    such a layer is marked as a Keras 3 config (``module``), which sends it there."""
    axis = layer["config"]["axis"]
    if isinstance(axis, int) or (isinstance(axis, list) and len(axis) == 1):
        return
    if axis == []:  # Keras 2's way of writing axis=None: one mean and variance for all
        layer["config"]["axis"] = None
    layer["module"], layer["registered_name"] = "keras.layers", None
