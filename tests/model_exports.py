"""One small Keras CNN exported the ways people export MNIST models, for the format tests:
a SavedModel (Keras' own export), TFLite (float, fixed batch of 1, uint8-quantised), ONNX
written with onnx.helper in four input layouts (tf2onnx does not install here); and files
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
    """The CNN (Conv 3x3 → ReLU → MaxPool 2 → Flatten → Dense) as ONNX taking ``layout``:
    "nchw" (N,1,28,28), "nhwc" (N,28,28,1), "flat" (N,784) or "rgb" (N,3,28,28)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    conv, dense = (layer for layer in model.layers if layer.weights)
    kernel, bias = (np.asarray(weight) for weight in conv.weights)
    weights, offsets = (np.asarray(weight) for weight in dense.weights)
    shapes = {"nchw": [1, 28, 28], "nhwc": [28, 28, 1], "flat": [784], "rgb": [3, 28, 28]}
    first = {"nchw": [helper.make_node("Identity", ["x"], ["image"])],
             "nhwc": [helper.make_node("Transpose", ["x"], ["image"], perm=[0, 3, 1, 2])],
             "flat": [helper.make_node("Reshape", ["x", "image_shape"], ["image"])],
             "rgb": [helper.make_node("ReduceMean", ["x"], ["image"], axes=[1], keepdims=1)]}
    nodes = first[layout] + [
        helper.make_node("Conv", ["image", "W", "B"], ["conv"]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["nhwc"], perm=[0, 2, 3, 1]),  # Keras' order
        helper.make_node("Flatten", ["nhwc"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "D"], ["product"]),
        helper.make_node("Add", ["product", "C"], ["logits" if not logits else "y"])]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=1))
    initializers = [numpy_helper.from_array(kernel.transpose(3, 2, 0, 1).copy(), "W"),
                    numpy_helper.from_array(bias, "B"), numpy_helper.from_array(weights, "D"),
                    numpy_helper.from_array(offsets, "C"),
                    numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "image_shape")]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                     ["N", *shapes[layout]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(onnx_model)
    path.write_bytes(onnx_model.SerializeToString())
    return path


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
    bias = next(tensor for tensor in model.graph.initializer if tensor.name == "C")
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
