"""Files that carry code or unpack without end, against the real commands: the SavedModels of
:mod:`testkit.crafted_code`, ONNX external data inside a subgraph, a .keras zip that unpacks
to gigabytes, a SavedModel linking outside its folder or nesting deeper than Python's stack;
and the temporary files every run leaves. Used by benchmarks/hostile_sweep.py ("code") and
tests/test_stored_code.py.

A case whose stored code ran (the marker file written) is "code ran"; a temporary file left
behind by evaluate.py or a training run is "orphans".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from testkit.crafted_code import CRAFTS, crafted_saved_model
from testkit.hostile import Kit, Result, environment_variable, run
from testkit.hostile_models import sweep_models


def onnx_with_branch_bias(folder: Path, location: str, name: str = "branch.onnx") -> Path:
    """A linear ONNX model whose bias is added inside an ``If`` branch, from external data at
    ``location``."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.full((784, 10), 0.01, np.float32), "weights")
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [10], np.zeros(10, np.float32))
    bias.ClearField("float_data")
    bias.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "40")):
        bias.external_data.add(key=key, value=value)
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["scores", "bias"], ["biased"])], "with_bias", [],
        [helper.make_tensor_value_info("biased", TensorProto.FLOAT, [None, 10])],
        initializer=[bias])
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["scores"], ["unbiased"])], "without", [],
        [helper.make_tensor_value_info("unbiased", TensorProto.FLOAT, [None, 10])])
    nodes = [helper.make_node("Flatten", ["image"], ["flat"]),
             helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
             helper.make_node("Constant", [], ["yes"], value=helper.make_tensor(
                 "yes", TensorProto.BOOL, [], [True])),
             helper.make_node("If", ["yes"], ["logits"], then_branch=then_branch,
                              else_branch=else_branch),
             helper.make_node("Softmax", ["logits"], ["probabilities"])]
    graph = helper.make_graph(
        nodes, "branch_bias",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def keras_zip_bomb(path: Path, keras_version: str, members: int = 17) -> Path:
    """A .keras zip of a few hundred KB whose members, each under the bound on a config,
    unpack to more than a model can be in all."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", f'{{"keras_version": "{keras_version}"}}')
        archive.writestr("config.json", "{}")
        for number in range(members):
            archive.writestr(f"assets/part{number}.bin", bytes(16 * 2**20 - 1))
    return path


def stored_code_files(folder: Path, marker: Path) -> list[Path]:
    """Every hostile file of this kind, made in ``folder``; the code ones write ``marker``."""
    files = [crafted_saved_model(craft, folder / craft, marker) for craft in CRAFTS]
    (folder / "secret.bin").write_bytes(np.ones(10, np.float32).tobytes())
    files.append(onnx_with_branch_bias(folder / "onnx_outside", "../secret.bin",
                                       "outside.onnx"))
    inside = onnx_with_branch_bias(folder / "onnx_inside", "bias.bin", "inside.onnx")
    (inside.parent / "bias.bin").write_bytes(np.zeros(10, np.float32).tobytes())
    files.append(inside)
    files += [keras_zip_bomb(folder / f"bomb{version[0]}.keras", version)
              for version in ("3.15.1", "2.14.0")]
    linked = crafted_saved_model("loader_saver", folder / "linked", folder / "unused")
    (linked / "variables" / "variables.index").unlink()
    (linked / "variables" / "variables.index").symlink_to(folder / "secret.bin")
    files.append(linked)
    return files


def sweep_stored_code(kit: Kit, folder: Path) -> list[Result]:
    """evaluate.py on each file beside a good model, with temporary files sent to a folder of
    the sweep's own; then a training run the same way."""
    marker, temporary = folder / "written", folder / "tmp"
    temporary.mkdir(exist_ok=True)
    files = stored_code_files(folder / "files", marker)
    with environment_variable("TMPDIR", str(temporary)):
        results = sweep_models(kit, files, "code", 12)
        trained = run(["train_logreg.py", "--epochs", "1", "--data", str(kit.data),
                       "--no-plot", "--quiet", "--output", str(folder / "run" / "m.h5")],
                      kit.timeout)
    if marker.exists():
        results = [Result(r.kind, r.name, "code ran", "the marker was written")
                   if r.outcome in ("refused", "evaluated") else r for r in results]
    left = sorted(path.name for path in temporary.iterdir())
    results.append(Result("code", "temporary files of evaluate.py and a training run",
                          "orphans" if left else ("refused" if trained.code else "evaluated"),
                          f"left: {left[:5]}" if left else f"training exit {trained.code}"))
    return results
