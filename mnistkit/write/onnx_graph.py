"""A trained Keras model as ONNX, built operator by operator with ``onnx.helper``.

Keras' own ``model.export(format="onnx")`` needs tf2onnx, whose latest release (1.16.1) pins
protobuf 3.20, where TensorFlow 2.21 and onnx run on protobuf 7: it does not install here. So
the layers our training scripts use are translated here, each into the ONNX operators that
compute what the layer computes at inference. A layer without a translation, or with a
setting that has none, is refused with its name: never approximated.

Keras lays images out channels last (N, H, W, C); ONNX's Conv and MaxPool take channels
first (N, C, H, W). The graph takes Keras' layout (or channels first, when asked) and
transposes where an operator needs the other one; Flatten goes back to channels last first,
so that the Dense weights after it see the values in Keras' order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from mnistkit.write.errors import ExportError

OPSET = 13  # Softmax over one axis, as Keras'; run by every ONNX Runtime since 1.6
IR_VERSION = 7  # the file format of opset 13: older readers take it too
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
               "linear": None}
SUPPORTED = ("Conv2D, MaxPooling2D, BatchNormalization, ReLU, Activation, Softmax, Flatten, "
             "Dense, Dropout and the Random* augmentation layers")


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]  # Keras' shape without the batch axis: channels last
    channels_first: bool = False  # laid out (C, H, W) in the graph, after a Transpose


class _Graph:
    """The nodes and weights of the graph being built."""

    def __init__(self):
        self.nodes, self.weights = [], []

    def weight(self, name: str, array) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def channels_first(self, tensor: _Tensor) -> _Tensor:
        if tensor.channels_first:
            return tensor
        if len(tensor.shape) != 3:
            raise ExportError(f"a tensor of shape {tensor.shape} is not an image (H, W, C)")
        name = self.node("Transpose", [tensor.name], f"{tensor.name}.nchw", perm=[0, 3, 1, 2])
        return _Tensor(name, tensor.shape, True)

    def channels_last(self, tensor: _Tensor) -> _Tensor:
        if not tensor.channels_first:
            return tensor
        name = self.node("Transpose", [tensor.name], f"{tensor.name}.nhwc", perm=[0, 2, 3, 1])
        return _Tensor(name, tensor.shape)


def keras_to_onnx(model, channels_first: bool = False):
    """The ONNX model (an ``onnx.ModelProto``, checked) computing what ``model`` computes at
    inference: a Sequential model, or a functional one that is a chain of layers, of the
    layers in SUPPORTED. The input is float32, in Keras' layout, or (N, C, H, W) with
    ``channels_first``. Raises :class:`ExportError` naming a layer that cannot be written."""
    import onnx
    from onnx import TensorProto, helper

    layers = _chain(model)
    shape = tuple(int(dim) for dim in model.input_shape[1:])
    first = channels_first and len(shape) == 3
    graph = _Graph()
    tensor = _Tensor("images", shape, first)
    for layer in layers:
        tensor = _translate(graph, layer, tensor)
    tensor = graph.channels_last(tensor)
    ends_in_softmax = bool(graph.nodes) and graph.nodes[-1].op_type == "Softmax"
    output = "probabilities" if ends_in_softmax else "outputs"
    graph.node("Identity", [tensor.name], output)
    input_dims = [shape[2], shape[0], shape[1]] if first else list(shape)
    onnx_model = helper.make_model(
        helper.make_graph(
            graph.nodes, model.name,
            [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", *input_dims])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", *tensor.shape])],
            graph.weights),
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="mnistkit", doc_string=f"Keras model {model.name}, written by mnistkit")
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _chain(model) -> list:
    """The model's layers in order; ExportError unless each takes the one before's output."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError("ONNX export: the model has several inputs or outputs")
    previous = model.inputs[0]
    for layer in layers:
        if layer.input is not previous:
            raise _refuse(layer, "does not take the previous layer's output; only chains of "
                                 "layers are translated")
        previous = layer.output
    return layers


def _translate(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    """The layer's operators added to the graph; the tensor they give."""
    from keras import layers

    identity = (layers.Dropout, layers.SpatialDropout2D, layers.GaussianNoise,
                layers.GaussianDropout, layers.AlphaDropout, layers.RandomRotation,
                layers.RandomTranslation, layers.RandomZoom, layers.RandomFlip,
                layers.RandomContrast, layers.RandomBrightness)
    kind = type(layer)  # exactly these classes: a subclass may compute something else
    shape = tuple(int(dim) for dim in layer.compute_output_shape((None, *tensor.shape))[1:])
    if kind in identity:  # noise and augmentation: only while training
        return tensor
    translations = {layers.Conv2D: _conv, layers.MaxPooling2D: _max_pool,
                    layers.BatchNormalization: _batch_norm, layers.Flatten: _flatten,
                    layers.Dense: _dense, layers.ReLU: _relu,
                    layers.Activation: lambda g, lay, t: _activation(g, lay.activation, t, lay),
                    layers.Softmax: _softmax}
    if kind not in translations:
        raise _refuse(layer, f"has no translation (supported: {SUPPORTED})")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise _refuse(layer, "is channels first; Keras' default, channels last, is translated")
    return dataclasses.replace(translations[kind](graph, layer, tensor), shape=shape)


def _refuse(layer, why: str) -> ExportError:
    return ExportError(f"ONNX export: layer {layer.name!r} ({type(layer).__name__}) {why}")


def _pads(layer, tensor: _Tensor, kernel: tuple, strides: tuple) -> list[int]:
    """ONNX's (top, left, bottom, right) padding for Keras' ``padding``: "same" pads as
    TensorFlow does, the odd pixel at the bottom and the right."""
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    if layer.padding != "same":
        raise _refuse(layer, f"has padding {layer.padding!r}")
    begin, end = [], []
    for size, window, stride in zip(tensor.shape[:2], kernel, strides, strict=True):
        total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _conv(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        raise _refuse(layer, "is dilated or grouped")
    image = graph.channels_first(tensor)
    kernel = np.asarray(layer.kernel, np.float32).transpose(3, 2, 0, 1)  # (out, in, h, w)
    inputs = [image.name, graph.weight(f"{layer.name}.kernel", kernel)]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}.bias", np.asarray(layer.bias, np.float32)))
    name = graph.node("Conv", inputs, f"{layer.name}.linear", kernel_shape=list(kernel.shape[2:]),
                      strides=list(layer.strides),
                      pads=_pads(layer, tensor, kernel.shape[2:], layer.strides))
    return _activation(graph, layer.activation, _Tensor(name, (), True), layer)


def _max_pool(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    image = graph.channels_first(tensor)
    name = graph.node("MaxPool", [image.name], layer.name, kernel_shape=list(layer.pool_size),
                      strides=list(layer.strides),
                      pads=_pads(layer, tensor, layer.pool_size, layer.strides))
    return _Tensor(name, (), True)


def _batch_norm(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    """ONNX's BatchNormalization in inference mode: the moving mean and variance."""
    if layer.axis not in (-1, len(tensor.shape)) or len(tensor.shape) not in (1, 3):
        raise _refuse(layer, f"normalises axis {layer.axis} of shape {tensor.shape}; only the "
                             "channels (the last axis) of an image or a vector are translated")
    source = graph.channels_first(tensor) if len(tensor.shape) == 3 else tensor
    channels = tensor.shape[-1]

    def weight(name: str, present: bool, default: float) -> str:
        values = getattr(layer, name) if present else np.full(channels, default)
        return graph.weight(f"{layer.name}.{name}", np.asarray(values, np.float32))

    inputs = [source.name, weight("gamma", layer.scale, 1.0), weight("beta", layer.center, 0.0),
              weight("moving_mean", True, 0.0), weight("moving_variance", True, 1.0)]
    name = graph.node("BatchNormalization", inputs, layer.name, epsilon=float(layer.epsilon))
    return _Tensor(name, (), source.channels_first)


def _flatten(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    return _Tensor(graph.node("Flatten", [graph.channels_last(tensor).name], layer.name, axis=1),
                   ())


def _dense(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    if len(tensor.shape) != 1:
        raise _refuse(layer, f"takes a tensor of shape {tensor.shape}; only vectors (after "
                             "a Flatten) are translated")
    inputs = [tensor.name, graph.weight(f"{layer.name}.kernel",
                                        np.asarray(layer.kernel, np.float32))]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}.bias", np.asarray(layer.bias, np.float32)))
    name = graph.node("Gemm" if layer.use_bias else "MatMul", inputs, f"{layer.name}.linear")
    return _activation(graph, layer.activation, _Tensor(name, ()), layer)


def _relu(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    if layer.max_value is not None or layer.negative_slope or layer.threshold:
        raise _refuse(layer, "has a max_value, negative_slope or threshold")
    return dataclasses.replace(tensor, name=graph.node("Relu", [tensor.name], layer.name))


def _softmax(graph: _Graph, layer, tensor: _Tensor) -> _Tensor:
    if layer.axis not in (-1, len(tensor.shape)):
        raise _refuse(layer, f"takes the softmax over axis {layer.axis}, not the last")
    return _activation(graph, "softmax", tensor, layer)


def _activation(graph: _Graph, function, tensor: _Tensor, layer) -> _Tensor:
    """The operator of a Keras activation (the function, or its name); softmax over the
    channels, axis 1 when the tensor is laid out channels first, else the last axis."""
    import keras

    for name, op in ACTIVATIONS.items():
        if function in (name, keras.activations.get(name)):
            if op is None:
                return tensor
            axis = {"axis": 1 if tensor.channels_first else -1} if op == "Softmax" else {}
            return dataclasses.replace(tensor, name=graph.node(op, [tensor.name], layer.name,
                                                               **axis))
    raise _refuse(layer, f"has activation {getattr(function, '__name__', function)!r} "
                         f"(translated: {', '.join(ACTIVATIONS)})")
