"""One small Keras CNN exported the ways people export MNIST models, for the format tests:
a SavedModel (Keras' own export), TFLite (float, fixed batch of 1, uint8-quantised), ONNX
by the kit's own writer in four input layouts (tf2onnx does not install here); and files
that must be refused: ops that write a file, a custom-op domain, external data elsewhere."""

from pathlib import Path

import numpy as np


def export_saved_model(model, folder: Path) -> Path:
    model.export(str(folder), format="tf_saved_model", verbose=False)
    return folder


def to_tflite(saved_model: Path, path: Path, kind: str, images: np.ndarray) -> Path:
    """``kind``: "float"; "batch1" (input fixed at one image); "uint8" (full-integer
    quantisation with uint8 input and output tensors, calibrated on ``images``, 0-1)."""
    import tensorflow as tf

    if kind == "batch1":
        loaded = tf.saved_model.load(str(saved_model))
        serve = tf.function(lambda x: loaded.serve(x),
                            input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [serve.get_concrete_function()], loaded)
    else:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if kind == "uint8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [image[None, ..., None].astype(np.float32) / 255] for image in images[:200])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
    path.write_bytes(converter.convert())
    return path


def to_onnx(model, path: Path, layout: str, logits: bool = False) -> Path:
    """The CNN as ONNX, written by the kit's own writer (``mnistkit.write.onnx_graph``),
    taking ``layout``: "nchw" (N,1,28,28), "nhwc" (N,28,28,1), "flat" (N,784) or "rgb"
    (N,3,28,28), the last two through a first node that makes the (N,1,28,28) image of
    them. ``logits``: without the final softmax, as some converters write it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mnistkit.write.onnx_graph import keras_to_onnx

    onnx_model = keras_to_onnx(model, channels_first=layout != "nhwc")
    graph = onnx_model.graph
    if layout in ("flat", "rgb"):
        first = {"flat": helper.make_node("Reshape", ["x", "image_shape"], ["images"]),
                 "rgb": helper.make_node("ReduceMean", ["x"], ["images"], axes=[1],
                                         keepdims=1)}[layout]
        graph.node.insert(0, first)
        graph.initializer.append(numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64),
                                                         "image_shape"))
        graph.input[0].CopyFrom(helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, ["N", *{"flat": [784], "rgb": [3, 28, 28]}[layout]]))
    if logits:
        softmax = next(node for node in graph.node if node.op_type == "Softmax")
        for node in graph.node:
            node.input[:] = [softmax.input[0] if name == softmax.output[0] else name
                             for name in node.input]
        graph.node.remove(softmax)
    onnx.checker.check_model(onnx_model)
    path.write_bytes(onnx_model.SerializeToString())
    return path


def output_bias(model):
    """The ONNX model's stored bias of the output layer: its last initializer of 10 values."""
    return [tensor for tensor in model.graph.initializer if list(tensor.dims) == [10]][-1]


def with_custom_domain(source: Path, path: Path) -> Path:
    """The ONNX model with one operator of a custom-op domain."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    model.graph.node.append(helper.make_node("Evil", ["y"], ["z"], domain="com.example.evil"))
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
    path.write_bytes(model.SerializeToString())
    return path


def with_external_data(source: Path, path: Path, location: str) -> Path:
    """The ONNX model with its dense bias read from ``location`` (external data)."""
    import onnx

    model = onnx.load(str(source))
    bias = output_bias(model)
    bias.ClearField("raw_data")
    bias.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "40")):
        bias.external_data.add(key=key, value=value)
    path.write_bytes(model.SerializeToString())
    return path


def file_writer(marker: Path):
    """A tf.Module whose serving function writes ``marker``: what no model may do."""
    import tensorflow as tf

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(marker), "written")
            return tf.nn.softmax(tf.reshape(tf.reduce_mean(x, [1, 2, 3]), [-1, 1]) *
                                 tf.ones([1, 10]))

    return Writer()


def writer_saved_model(marker: Path, folder: Path) -> Path:
    import tensorflow as tf

    module = file_writer(marker)
    tf.saved_model.save(module, str(folder), signatures=module.serve)
    return folder


def writer_tflite(marker: Path, path: Path) -> Path:
    """TFLite keeps the op it has no builtin for as a custom op ("WriteFile")."""
    import tensorflow as tf

    module = file_writer(marker)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    converter.allow_custom_ops = True
    path.write_bytes(converter.convert())
    return path


def with_open_output(source: Path, path: Path) -> Path:
    """The ONNX model with its output's class axis left open (as some converters write it)."""
    import onnx

    model = onnx.load(str(source))
    model.graph.output[0].type.tensor_type.shape.dim[1].ClearField("dim_value")
    path.write_bytes(model.SerializeToString())
    return path
