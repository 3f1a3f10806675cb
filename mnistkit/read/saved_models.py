"""TensorFlow SavedModel folders: TF2 tf.keras saves and TF1 serving exports, run through a
signature, after their ops have been checked (:mod:`mnistkit.read.saved_model_ops`).

The signature is chosen from ``saved_model.pb`` before anything loads: ``serving_default``
when it takes one float image and gives 10 classes, else the first other one that does (a TF1
export's ``predict_images``, whose ``serving_default`` takes serialized tf.Examples). The
graph is then loaded into a TensorFlow 1 session, the way TensorFlow Serving loads it: this
reads TF2 Keras saves too, also those whose optimizer objects ``tf.saved_model.load`` no
longer rebuilds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistkit.files import bounded
from mnistkit.prepare.inputs import layout_for
from mnistkit.read import runners
from mnistkit.read.errors import ModelError
from mnistkit.read.runners import Runner, cast_for, fixed_dim
from mnistkit.read.saved_model_ops import check_ops, reachable

_NUMBER_TYPES = {1: np.float32, 2: np.float64, 19: np.float16, 4: np.uint8}  # DataType enum
_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "main_op", "table_initializer")
INIT_SIGNATURE = "__saved_model_init_op"


class SavedModelRunner(Runner):
    format = "saved_model"

    def __init__(self, session, input_name, output_name, input_shape, output_shape, params,
                 dtype):
        super().__init__(input_shape, output_shape, params)
        self.session, self.input_name, self.output_name = session, input_name, output_name
        self.dtype = dtype

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_name,
                                {self.input_name: cast_for(inputs, self.dtype)})


def load_saved_model(folder: Path) -> SavedModelRunner:
    """The SavedModel in ``folder``, loaded as TensorFlow Serving's loader would, by its steps:
    the graph imported (nothing runs), every op that restoring, initialising and scoring will
    run checked in the imported graph (which holds the ``Saver`` the import builds when the
    file has none), then the variables restored and the init op run."""
    import tensorflow as tf

    check_folder(folder)
    meta_graph = _meta_graph(_read_proto(folder / "saved_model.pb"))
    key, signature, output_key = choose_signature(meta_graph)
    inputs = next(iter(signature.inputs.values()))
    output = signature.outputs[output_key]
    graph = tf.Graph()
    try:
        with graph.as_default():
            saver = tf.compat.v1.train.import_meta_graph(meta_graph)
            restore, init = _restore_and_init(graph, saver, meta_graph)
            graph_def = graph.as_graph_def()
            check_ops(graph_def, [output.name], fed=(inputs.name,))  # scoring
            check_ops(graph_def, [*restore, *init, *_variable_nodes(graph)])  # loading
    except ModelError:
        raise
    except Exception as error:  # TensorFlow's ValueError, KeyError, ... on a crafted graph
        raise ModelError(f"TensorFlow cannot import the SavedModel's graph "
                         f"({' '.join(str(error).split())[:200]})") from None
    session = tf.compat.v1.Session(graph=graph)
    try:
        if restore:
            session.run(restore, {saver.saver_def.filename_tensor_name:
                                  str(folder / "variables" / "variables")})
        if init:
            session.run(init, _asset_paths(folder, meta_graph))
    except Exception as error:  # TensorFlow's NotFoundError, InvalidArgumentError, ...
        session.close()
        raise ModelError(f"TensorFlow cannot load the SavedModel (signature {key!r}: "
                         f"{' '.join(str(error).split())[:200]})") from None
    return SavedModelRunner(session, inputs.name, output.name, _dims(inputs)[1:],
                            _dims(output)[1:],
                            _variables(reachable(meta_graph.graph_def, [output.name],
                                                 (inputs.name,))),
                            _NUMBER_TYPES[inputs.dtype])


def _restore_and_init(graph, saver, meta_graph) -> tuple[list[str], list[str]]:
    """The op that restores the variables (empty without variables) and the init ops, as
    TensorFlow's SavedModel loader picks them: the init signature's output, else the
    ``saved_model_main_op`` collection, else ``legacy_init_op``."""
    restore = [saver.saver_def.restore_op_name] if saver is not None else []
    if INIT_SIGNATURE in meta_graph.signature_def:
        return restore, [tensor.name for tensor in
                         meta_graph.signature_def[INIT_SIGNATURE].outputs.values()]
    for name in _INIT_COLLECTIONS:
        if name in meta_graph.collection_def:
            return restore, list(meta_graph.collection_def[name].node_list.value)
    return restore, []


def _variable_nodes(graph) -> list[str]:
    """Every variable's node: a restore may reach any of them (TensorFlow's object-based
    fallback restores whatever variables the graph holds)."""
    return [op.name for op in graph.get_operations()
            if op.type in ("VarHandleOp", "VariableV2", "Variable")]


def _asset_paths(folder: Path, meta_graph) -> dict[str, str]:
    """The asset tensors fed to the init op, as TensorFlow's loader feeds them."""
    return {asset.tensor_info.name: str(folder / "assets" / asset.filename)
            for asset in meta_graph.asset_file_def}


def check_folder(folder: Path) -> None:
    """Refuse a SavedModel folder with a link that leads outside it, or more entries than a
    model has: TensorFlow would follow the link and read whatever it names."""
    root = folder.resolve()
    try:
        for path in bounded.walk(folder, bounded.MAX_FOLDER_ENTRIES):
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise ModelError(f"the SavedModel's {path.relative_to(folder).as_posix()!r} "
                                 "is a link to outside its folder: refused")
    except ValueError as error:
        raise ModelError(str(error)) from None


def _read_proto(path: Path):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    if path.stat().st_size > runners.MAX_MODEL_BYTES:
        raise ModelError(f"saved_model.pb has {path.stat().st_size:,} bytes; an MNIST model's "
                         f"has at most {runners.MAX_MODEL_BYTES:,}")
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except DecodeError as error:
        raise ModelError(f"damaged saved_model.pb ({error})") from None
    return proto


def _meta_graph(proto):
    """The graph tagged for serving, as TensorFlow Serving would pick; else the first."""
    graphs = list(proto.meta_graphs)
    if not graphs:
        raise ModelError("saved_model.pb holds no graph")
    return next((graph for graph in graphs if "serve" in graph.meta_info_def.tags), graphs[0])


def choose_signature(meta_graph) -> tuple[str, object, str]:
    """(name, signature, output key) of the signature that takes one float image of MNIST's
    layouts and gives 10 classes: ``serving_default`` first."""
    names = sorted(meta_graph.signature_def, key=lambda name: (name != "serving_default", name))
    for name in names:
        signature = meta_graph.signature_def[name]
        if len(signature.inputs) != 1:
            continue
        (inputs,) = signature.inputs.values()
        try:
            layout_for(tuple(_dims(inputs)[1:]))
        except ValueError:
            continue
        outputs = [key for key, tensor in sorted(signature.outputs.items())
                   if tensor.dtype in _NUMBER_TYPES and _dims(tensor)[1:] == [10]]
        if inputs.dtype in _NUMBER_TYPES and outputs:
            return name, signature, outputs[0]
    raise ModelError("no signature of the SavedModel takes one 28x28 image and gives 10 "
                     f"classes (signatures: {', '.join(names) or 'none'})")


def _dims(tensor) -> list[int | None]:
    if tensor.tensor_shape.unknown_rank:
        return []
    return [fixed_dim(dim.size) for dim in tensor.tensor_shape.dim]


def _variables(nodes: list) -> int:
    """Elements of the variables the signature reads: the model's parameters."""
    total = 0
    for node in nodes:
        if node.op in ("VarHandleOp", "VariableV2", "Variable") and "shape" in node.attr:
            total += int(np.prod([max(dim.size, 0) for dim in node.attr["shape"].shape.dim]))
    return total
