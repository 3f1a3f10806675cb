"""SavedModel folders crafted to run TensorFlow's ``WriteFile`` while they load or score,
through the paths a check of the signature's outputs alone does not see. Each writes
``marker`` if any of its code runs; a reader must refuse all of them with the op's name.

    fed_identity_n     the signature feeds ``idn:1``, the second output of an ``IdentityN``
                       whose control input writes: feeding a tensor does not stop its node
    loader_saver       ``saver_def`` removed: the loader builds its own ``Saver`` over the
                       variables, and one variable's handle has the writer as control input
    nested_function    a ``StatefulPartitionedCall`` of ``Outer{g: Evil}``: ``Outer`` calls
                       whatever function its caller names in ``g``, here one that writes

Made with TensorFlow's graph builder, then edited as protobuf where TensorFlow would not write
such a graph itself.
"""

from __future__ import annotations

from pathlib import Path

CRAFTS = ("fed_identity_n", "loader_saver", "nested_function")


def crafted_saved_model(craft: str, folder: Path, marker: Path) -> Path:
    """The SavedModel ``craft`` (one of :data:`CRAFTS`) in ``folder``, writing ``marker``."""
    build = {"fed_identity_n": _fed_identity_n, "loader_saver": _loader_saver,
             "nested_function": _nested_function}[craft]
    return build(folder, marker)


def _save(folder: Path, graph, inputs, outputs) -> None:
    import tensorflow as tf

    v1 = tf.compat.v1
    with graph.as_default(), v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(folder))
        signature = v1.saved_model.predict_signature_def({"x": inputs}, {"y": outputs})
        builder.add_meta_graph_and_variables(session, ["serve"],
                                             signature_def_map={"serving_default": signature})
        builder.save()


def _classes(tf, image, weight):
    """Ten probabilities from an image: enough of a model to be scored."""
    mean = tf.reshape(tf.reduce_mean(image, [1, 2, 3]), [-1, 1])
    return tf.nn.softmax(mean * weight, name="probabilities")


def _fed_identity_n(folder: Path, marker: Path) -> Path:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1], name="image")
        write = tf.io.write_file(str(marker), "written", name="write")
        with tf.control_dependencies([write]):
            both = tf.identity_n([image, image], name="idn")
        weight = tf.ones([1, 10]) + 0.0 * tf.reduce_mean(both[0])
        _save(folder, graph, both[1], _classes(tf, both[1], weight))
    return folder


def _loader_saver(folder: Path, marker: Path) -> Path:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1], name="image")
        weight = tf.compat.v1.get_variable("weight", [1, 10], initializer=tf.ones_initializer(),
                                           use_resource=True)
        # Constant initial values: a process with op determinism on refuses unseeded ones
        tf.compat.v1.get_variable("unused", [1], initializer=tf.zeros_initializer(),
                                  use_resource=True)
        tf.io.write_file(str(marker), "written", name="write")
        _save(folder, graph, image, _classes(tf, image, weight))
    return _edit(folder, _drop_saver)


def _drop_saver(meta_graph) -> None:
    meta_graph.ClearField("saver_def")
    (unused,) = [node for node in meta_graph.graph_def.node if node.name == "unused"]
    unused.input.append("^write")


def _nested_function(folder: Path, marker: Path) -> Path:
    """A graph whose image goes through a call of ``Outer{g: Evil}`` before the classes."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1], name="image")
        through = tf.identity(image, name="through")
        _save(folder, graph, image, _classes(tf, through, tf.ones([1, 10])))
    str_marker = str(marker)
    return _edit(folder, lambda meta_graph: _call_writer(meta_graph, str_marker))


def _call_writer(meta_graph, marker: str) -> None:
    from tensorflow.core.framework import attr_value_pb2, types_pb2

    library = meta_graph.graph_def.library
    (through,) = [node for node in meta_graph.graph_def.node if node.name == "through"]
    call = meta_graph.graph_def.node.add(name="call", op="StatefulPartitionedCall",
                                         input=["image"])
    for key in ("Tin", "Tout"):
        call.attr[key].list.type.append(types_pb2.DT_FLOAT)
    _add_evil(library, marker)
    _add_outer(library)
    call.attr["f"].func.name = "Outer"
    call.attr["f"].func.attr["g"].CopyFrom(attr_value_pb2.AttrValue(
        func=attr_value_pb2.NameAttrList(name="Evil")))
    through.input.append("^call")


def _add_evil(library, marker: str) -> None:
    from tensorflow.core.framework import types_pb2

    evil = library.function.add()
    evil.signature.name = "Evil"
    evil.signature.input_arg.add(name="x", type=types_pb2.DT_FLOAT)
    evil.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
    evil.signature.is_stateful = True
    for name, text in (("name", marker), ("text", "written")):
        constant = evil.node_def.add(name=name, op="Const")
        constant.attr["dtype"].type = types_pb2.DT_STRING
        constant.attr["value"].tensor.dtype = types_pb2.DT_STRING
        constant.attr["value"].tensor.string_val.append(text.encode())
    evil.node_def.add(name="write", op="WriteFile", input=["name:output:0", "text:output:0"])
    same = evil.node_def.add(name="same", op="Identity", input=["x", "^write"])
    same.attr["T"].type = types_pb2.DT_FLOAT
    evil.ret["y"] = "same:output:0"


def _add_outer(library) -> None:
    from tensorflow.core.framework import types_pb2

    outer = library.function.add()
    outer.signature.name = "Outer"
    outer.signature.input_arg.add(name="x", type=types_pb2.DT_FLOAT)
    outer.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
    outer.signature.attr.add(name="g", type="func")
    outer.signature.is_stateful = True
    inner = outer.node_def.add(name="inner", op="StatefulPartitionedCall", input=["x"])
    for key in ("Tin", "Tout"):
        inner.attr[key].list.type.append(types_pb2.DT_FLOAT)
    inner.attr["f"].placeholder = "g"
    outer.ret["y"] = "inner:output:0"


def _edit(folder: Path, change) -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    path = folder / "saved_model.pb"
    proto.ParseFromString(path.read_bytes())
    change(proto.meta_graphs[0])
    path.write_bytes(proto.SerializeToString())
    return folder
