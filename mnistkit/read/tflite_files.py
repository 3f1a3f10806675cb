"""TensorFlow Lite models, run by TensorFlow's own interpreter (``tf.lite.Interpreter``).

Only builtin operators run: a custom op, the TensorFlow ops of a "Flex" model included
(``FlexWriteFile`` would write files), is refused before anything is invoked. Inputs are fed
as the input tensor takes them (uint8 or int8 quantised with its scale and zero point; a uint8
tensor without them gets the pixel values rounded) and outputs dequantised. A model converted
with a fixed batch of 1 runs one image at a time; one with a free batch axis is resized to the
batch given.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from mnistkit.read.errors import ModelError
from mnistkit.read.runners import Runner, cast_for, fixed_dim

BUILTIN_OP = re.compile(r"[A-Z][A-Z0-9_]*")  # TFLite's builtin operators: CONV_2D, ...


class TfliteRunner(Runner):
    format = "tflite"

    def __init__(self, interpreter, input_detail: dict, output_detail: dict, params: int):
        signature = input_detail["shape_signature"]
        super().__init__(tuple(fixed_dim(dim) for dim in signature[1:]),
                         tuple(int(dim) for dim in output_detail["shape"][1:]), params,
                         fixed_batch=fixed_dim(signature[0]))
        self.interpreter, self.input, self.output = interpreter, input_detail, output_detail
        self.batch = int(input_detail["shape"][0])

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) != self.batch:  # a free batch axis: resize it to this batch
            self.interpreter.resize_tensor_input(self.input["index"],
                                                 [len(inputs), *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = len(inputs)
        scale, zero_point = self.input["quantization"]
        self.interpreter.set_tensor(self.input["index"],
                                    cast_for(inputs, self.input["dtype"], scale, zero_point))
        self.interpreter.invoke()
        outputs = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if scale and np.issubdtype(outputs.dtype, np.integer):
            return (outputs.astype(np.float32) - zero_point) * np.float32(scale)
        return outputs.astype(np.float32)


def load_tflite(path: Path) -> TfliteRunner:
    import tensorflow as tf

    check_flatbuffer(path.read_bytes())
    try:
        with warnings.catch_warnings():  # its deprecation notice is for TensorFlow's users
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=str(path))
        operators = interpreter._get_ops_details()  # noqa: SLF001 - the only list of the ops
        for operator in operators:  # before any op is prepared or run
            if not BUILTIN_OP.fullmatch(operator["op_name"]):
                raise ModelError(f"TFLite custom op {operator['op_name']} (TensorFlow ops "
                                 "inside TFLite can touch the world): refused")
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"the TFLite model has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; expected one of each")
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:  # the interpreter's words for a bad model
        raise ModelError(f"TFLite cannot run it ({' '.join(str(error).split())[:160]})") \
            from None
    return TfliteRunner(interpreter, inputs[0], outputs[0], _params(interpreter, operators))


def check_flatbuffer(data: bytes) -> None:
    """Walk the whole FlatBuffer in Python before the interpreter trusts it: the C++
    interpreter follows its offsets unchecked, and a truncated file crashes it."""
    import struct

    from tensorflow.lite.python import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError):
        raise ModelError("damaged TFLite file (its FlatBuffer ends early or points outside "
                         "itself)") from None
    for buffer in model.buffers or []:  # large models keep weights after the FlatBuffer
        if (buffer.offset or 0) + (buffer.size or 0) > len(data):
            raise ModelError("damaged TFLite file (a weight buffer lies beyond its end)")


def _params(interpreter, operators: list[dict]) -> int:
    """Elements of the constant tensors: those the operators read that no operator writes
    and that are not the model's input (weights, biases, and a few shape constants)."""
    written = {index for operator in operators for index in operator["outputs"]}
    read = {index for operator in operators for index in operator["inputs"] if index >= 0}
    graph_inputs = {detail["index"] for detail in interpreter.get_input_details()}
    sizes = {detail["index"]: int(np.prod(detail["shape"]))
             for detail in interpreter.get_tensor_details()}
    return sum(sizes.get(index, 0) for index in read - written - graph_inputs)
