"""Turn the TensorFlow ops that tf.keras stored as layers into standard Keras 3 layers.

tf.keras stored ``x / 255`` or ``tf.cast(x, "float32")`` written in a functional model as a
``TFOpLambda`` layer (TF 2.4+: the op's name, its other arguments in the inbound node) or a
``TensorFlowOpLayer`` (TF 2.0-2.3: a NodeDef and its constants). Neither holds Python code;
Keras 3 has neither class. Pure JSON to JSON, like :mod:`mnistkit.read.legacy`.
"""

from __future__ import annotations


class LegacyError(Exception):
    """A stored config that cannot become a Keras 3 model without running code."""


# TFOpLambda functions and TensorFlowOpLayer ops of plain arithmetic with a constant, as
# (scale, offset) of the Rescaling layer that computes the same thing: x*scale + offset.
_ARITHMETIC = {
    "math.truediv": lambda c: (1 / c, 0.0), "math.divide": lambda c: (1 / c, 0.0),
    "__operators__.truediv": lambda c: (1 / c, 0.0), "RealDiv": lambda c: (1 / c, 0.0),
    "math.multiply": lambda c: (c, 0.0), "__operators__.mul": lambda c: (c, 0.0),
    "Mul": lambda c: (c, 0.0),
    "math.add": lambda c: (1.0, c), "__operators__.add": lambda c: (1.0, c),
    "AddV2": lambda c: (1.0, c), "Add": lambda c: (1.0, c),
    "math.subtract": lambda c: (1.0, -c), "__operators__.sub": lambda c: (1.0, -c),
    "Sub": lambda c: (1.0, -c),
}
_IDENTITY = {"cast", "dtypes.cast", "Cast", "identity", "Identity"}


def replace_tf_op(layer: dict, inputs: dict) -> None:
    """Turn a stored TensorFlow op into the standard layer that computes the same (Rescaling,
    Identity, Reshape), or raise LegacyError naming the op. ``inputs``: the model's input
    shapes by layer name, for ops whose result's shape Keras 3 must be told."""
    config = layer["config"]
    if layer["class_name"] == "TFOpLambda":
        op = str(config.get("function", "?"))
        constant = _tfoplambda_constant(layer)
    else:
        node = config.get("node_def", {})
        op = str(node.get("op", "?"))
        constants = config.get("constants", {}) or {}
        constant = constants.get("1", constants.get(1))
        if constant is None and op in ("Mul", "AddV2", "Add"):  # constant first: commutative
            constant = constants.get("0", constants.get(0))
    keep = {"name": config.get("name", layer.get("name")), "dtype": "float32"}
    target = _reshape_target(layer, op, inputs) if layer["class_name"] == "TFOpLambda" else None
    if op in _IDENTITY or op.endswith(".cast"):
        layer["class_name"], layer["config"] = "Identity", keep
    elif target is not None:
        layer["class_name"], layer["config"] = "Reshape", {**keep, "target_shape": target}
    elif op in _ARITHMETIC and isinstance(constant, (int, float)):
        scale, offset = _ARITHMETIC[op](float(constant))
        layer["class_name"] = "Rescaling"
        layer["config"] = {**keep, "scale": scale, "offset": offset}
    else:
        shown = op if op[:1].isupper() else f"tf.{op}"
        raise LegacyError(f"layer {keep['name']!r} uses TensorFlow op {shown}, which "
                          "cannot be rebuilt without TensorFlow code")
    _drop_call_arguments(layer)


def _node_entries(layer: dict) -> list[list]:
    """The [layer name, node index, tensor index, call kwargs] entries of a layer's inbound
    nodes; tf.keras wrote them one list deeper for most layers than for TFOpLambda."""
    found = []

    def visit(item) -> None:
        if isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str):
            found.append(item)
        elif isinstance(item, list):
            for inner in item:
                visit(inner)

    visit(layer.get("inbound_nodes", []))
    return found


def _reshape_target(layer: dict, op: str, inputs: dict) -> list[int] | None:
    """For ``tf.reshape(x, [-1, ...])``, and ``tf.expand_dims`` of a model input of known
    shape, the target shape of the equivalent Reshape layer (without the batch axis)."""
    entries = _node_entries(layer)
    kwargs = entries[0][3] if entries and len(entries[0]) >= 4 and isinstance(
        entries[0][3], dict) else {}
    if op in ("reshape", "compat.v1.reshape"):
        shape = kwargs.get("shape")
        if isinstance(shape, list) and shape and shape[0] in (-1, None) \
                and all(isinstance(dim, int) for dim in shape[1:]):
            return shape[1:]
    if op in ("expand_dims", "compat.v1.expand_dims") and entries:
        shape, axis = inputs.get(entries[0][0]), kwargs.get("axis")
        if isinstance(shape, list) and None not in shape[1:] and isinstance(axis, int) \
                and axis != 0 and -len(shape) - 1 <= axis <= len(shape):
            rank = len(shape) + 1
            position = (axis % rank) - 1  # among the axes after the batch axis
            return [*shape[1:position + 1], 1, *shape[position + 1:]]
    return None


def _tfoplambda_constant(layer: dict):
    """The constant operand of a TFOpLambda call (``y`` in ``tf.math.truediv(x, y=255.0)``)."""
    for entry in _node_entries(layer):
        if len(entry) >= 4 and isinstance(entry[3], dict):
            value = entry[3].get("y")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
    return None


def _drop_call_arguments(layer: dict) -> None:
    """The op's arguments (``y``, ``name``) are now the layer's config, not call arguments;
    the one input it keeps is written as a node of one entry, the form Keras 3 reads."""
    entries = [entry[:3] + [{}] for entry in _node_entries(layer)
               if not (isinstance(entry[0], str) and entry[0].startswith("_CONSTANT"))]
    layer["inbound_nodes"] = [entries[:1]] if entries else []
