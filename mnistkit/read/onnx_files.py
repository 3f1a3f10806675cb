"""ONNX models, run by ONNX Runtime once the file has been checked.

Before a session is made: the protobuf is parsed (bounded by ``runners.MAX_MODEL_BYTES``),
every operator must be of ONNX's standard domains, of ONNX Runtime's built-in contrib domain,
or a function the file itself defines (a custom-op domain would need a library loaded into
the process), and every tensor stored outside the file must lie in the model's own folder
(an external-data path such as ``../../etc/passwd`` would make the runtime read it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mnistkit.read.errors import ModelError
from mnistkit.read.runners import MAX_MODEL_BYTES, Runner, cast_for, fixed_dim

# Standard ONNX, ONNX-ML, and the contrib ops built into ONNX Runtime (quantised and fused
# kernels its own tools write): none loads code from outside the runtime.
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
INSTALL = "pip install onnxruntime==1.32.0 onnx==1.23.2"


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, session, input_shape, output_shape, params, fixed_batch, dtype):
        super().__init__(input_shape, output_shape, params, fixed_batch)
        self.session, self.dtype = session, dtype
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        feed = {self.input_name: cast_for(inputs, self.dtype)}
        return self.session.run([self.output_name], feed)[0]


def load_onnx(path: Path) -> OnnxRunner:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ModelError(f"an ONNX model: reading it needs onnxruntime and onnx ({INSTALL})") \
            from None
    try:
        data = path.read_bytes()  # read once: the session is made from what was checked
        model = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelError(f"damaged ONNX file ({' '.join(str(error).split())[:120]})") from None
    check_domains(model)
    external = check_external_data(model, path)
    inputs = [value for value in model.graph.input
              if value.name not in {tensor.name for tensor in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ModelError(f"the ONNX model has {len(inputs)} inputs and {len(model.graph.output)}"
                         " outputs; expected one of each")
    dims, dtype = _shape(inputs[0]), _dtype(inputs[0])
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about the graph are the author's business
    try:
        # External data is found relative to the file, so such a model is opened by its path
        session = onnxruntime.InferenceSession(str(path) if external else data, options,
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's Fail, InvalidGraph, NotImplemented
        raise ModelError(f"ONNX Runtime cannot run it ({' '.join(str(error).split())[:200]})") \
            from None
    params = count_params(model)
    output = _shape(model.graph.output[0])
    runner = OnnxRunner(session, tuple(dims[1:]), tuple(output[1:]), params,
                        fixed_dim(dims[0]) if dims else None, dtype)
    if None in output[1:] and None not in dims[1:]:  # the graph leaves it open: ask it
        runner.output_shape = (None, *runner.predict_on_batch(
            np.zeros((1, *dims[1:]), np.float32)).shape[1:])
    return runner


def check_domains(model) -> None:
    """Refuse operators of domains that ONNX Runtime could only run with a custom-op library."""
    local = {function.domain for function in model.functions}
    for node in _nodes(model):
        if node.domain not in KNOWN_DOMAINS | local:
            raise ModelError(f"ONNX operator {node.op_type} of custom domain {node.domain!r}: "
                             "it needs a custom-op library, which is never loaded: refused")


def check_external_data(model, path: Path) -> bool:
    """Every tensor stored outside the file must be a regular file in the model's folder;
    True when there is one."""
    import onnx

    folder, external = path.resolve().parent, False
    for tensor in _tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = {entry.key: entry.value for entry in tensor.external_data}.get("location", "")
        target = (folder / where).resolve()
        if not where or Path(where).is_absolute() or not target.is_relative_to(folder):
            raise ModelError(f"ONNX tensor {tensor.name!r} names external data {where!r} "
                             "outside the model's folder: refused")
        if not target.is_file():
            raise ModelError(f"ONNX tensor {tensor.name!r}: its external data {where!r} is "
                             "missing")
        if target.stat().st_size > MAX_MODEL_BYTES:
            raise ModelError(f"ONNX tensor {tensor.name!r}: its external data {where!r} has "
                             f"{target.stat().st_size:,} bytes (at most {MAX_MODEL_BYTES:,})")
        external = True
    return external


def count_params(model) -> int:
    """Elements of the weights the graph uses (an initializer no node reads is never
    allocated); not the int64 tensors ONNX wants shapes and axes in."""
    import onnx

    used = {name for node in _nodes(model) for name in node.input}
    return sum(math.prod(max(dim, 0) for dim in tensor.dims)
               for graph in _graphs(model) for tensor in graph.initializer
               if tensor.name in used and tensor.data_type != onnx.TensorProto.INT64)


def _graphs(model):
    """The model's graph and every graph inside it or inside its functions (If's branches,
    Loop's and Scan's bodies), at any depth."""
    pending = [model.graph]
    inner = [attribute for function in model.functions for node in function.node
             for attribute in node.attribute]
    while pending or inner:
        if pending:
            graph = pending.pop()
            yield graph
            inner += [attribute for node in graph.node for attribute in node.attribute]
        else:
            attribute = inner.pop()
            pending += [attribute.g, *attribute.graphs]


def _nodes(model):
    for graph in _graphs(model):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _tensors(model):
    """Every tensor the file stores: initializers of the graph and of every graph inside it,
    and constants held in attributes."""
    for graph in _graphs(model):
        yield from graph.initializer
        yield from (sparse.values for sparse in graph.sparse_initializer)
    for node in _nodes(model):
        for attribute in node.attribute:
            yield from [attribute.t, *attribute.tensors]


def _shape(value) -> list[int | None]:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        raise ModelError(f"the ONNX model's {value.name!r} declares no shape")
    return [fixed_dim(dim.dim_value) if dim.HasField("dim_value") else None
            for dim in tensor.shape.dim]


def _dtype(value) -> np.dtype:
    import onnx

    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
    except (KeyError, TypeError):  # an undefined element type
        dtype = np.dtype(object)
    if dtype.kind not in "fiu":
        raise ModelError(f"the ONNX model's input {value.name!r} is not a tensor of numbers")
    return dtype
