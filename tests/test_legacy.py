"""Models saved by Keras 2 / tf.keras, as people have them: real files from public
repositories (../shared/real-models), files made here with TensorFlow 2.12, 2.13 and 2.15
(tests/legacy_models, see make_legacy_models.py there), and the repairs one by one."""

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from mnistkit.read import legacy
from tests.conftest import ROOT

REAL_MODELS = Path(__file__).resolve().parents[2] / "shared" / "real-models"
OWN_MODELS = ROOT / "tests" / "legacy_models"
OWN_MANIFEST = json.loads((OWN_MODELS / "manifest.json").read_text())


def evaluate_json(tmp_path: Path, *argv, env: dict | None = None,
                  codes: tuple = (0, 1)) -> tuple[dict, str]:
    """Run evaluate.py with --json; its rows by file name, and what it printed."""
    report = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, "evaluate.py", *map(str, argv), "--json", report],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, **(env or {})})
    assert result.returncode in codes, result.stdout + result.stderr
    rows = json.loads(report.read_text())["models"]
    return {Path(row["file"]).name: row for row in rows}, result.stdout


# --- real files of other people ---------------------------------------------------------

@pytest.fixture(scope="module")
def real_rows(tmp_path_factory, mnist):
    if not REAL_MODELS.is_dir():  # a user's clone has no ../shared; CI and developers do
        pytest.skip(f"{REAL_MODELS} is absent: the real other-people models live outside "
                    "the repository")
    return evaluate_json(tmp_path_factory.mktemp("real"), REAL_MODELS)


@pytest.mark.slow
def test_every_real_mnist_model_scores_as_its_authors_fed_it(real_rows):
    rows, printed = real_rows
    manifest = json.loads((REAL_MODELS / "manifest.json").read_text())
    for entry in manifest:
        row = rows[entry["file"]]
        assert {"file", "accuracy", "error", "input_scale", "warning"} <= row.keys()
        if entry["kind"] != "mnist":
            continue
        assert row["error"] is None, (entry["file"], row["error"])
        assert abs(row["accuracy"] - entry["accuracy_with_authors_input"]) <= 0.005, \
            (entry["file"], row["accuracy"], row["input_scale"])
        assert row["input_scale"] in ("0-1", "0-255", "standardised", "normalize")
        if entry["accuracy_with_authors_input"] > 0.9:
            assert row["warning"] is None
    assert "(auto)" in printed


@pytest.mark.slow
def test_real_models_of_other_data_are_refused_or_warned(real_rows):
    rows, _ = real_rows
    manifest = json.loads((REAL_MODELS / "manifest.json").read_text())
    others = [entry["file"] for entry in manifest if entry["kind"] != "mnist"]
    assert others
    for name in others:
        row = rows[name]
        assert row["error"] or "trained on other data" in row["warning"], row


# --- files made with TensorFlow 2.12, 2.13 and 2.15 ---------------------------------------

@pytest.fixture(scope="module")
def own_rows(tmp_path_factory, mnist):
    return evaluate_json(tmp_path_factory.mktemp("own"), OWN_MODELS)[0]


def test_own_collection_spans_three_old_versions():
    versions = {entry["tensorflow"].rsplit(".", 1)[0] for entry in OWN_MANIFEST}
    assert len(versions) >= 3 and all(version.startswith("2.") for version in versions)
    assert sum((OWN_MODELS / entry["file"]).stat().st_size for entry in OWN_MANIFEST) < 1e6
    for entry in OWN_MANIFEST:
        with h5py.File(OWN_MODELS / entry["file"]) as file:
            assert file.attrs["keras_version"].startswith("2.")


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in OWN_MANIFEST if e["expect"] == "loads"],
                         ids=lambda entry: entry["file"])
def test_own_keras_2_file_scores_what_its_keras_gave(own_rows, entry):
    row = own_rows[entry["file"]]
    assert row["error"] is None, row["error"]
    assert row["input_scale"] == entry["input_scale"]  # auto finds what it was trained on
    assert abs(row["accuracy"] - entry["test_accuracy"]) <= 0.0003  # 3 of 10,000 images


@pytest.mark.slow
def test_own_files_that_must_be_refused_say_why(own_rows):
    refused = [own_rows[entry["file"]] for entry in OWN_MANIFEST if entry["expect"] == "refused"]
    assert refused
    for row in refused:  # a Lambda layer: Python bytecode
        assert row["accuracy"] is None
        assert "stored Python code" in row["error"] and "--trust-code" in row["error"]


@pytest.mark.slow
def test_keras_2_lambda_runs_only_when_trusted(tmp_path):
    entry = next(e for e in OWN_MANIFEST if e["file"].endswith("lambda_code.h5"))
    marker = tmp_path / "marker"  # its function leaves this file when it runs
    path = OWN_MODELS / entry["file"]
    rows, _ = evaluate_json(tmp_path, path, env={"LEGACY_MARKER": str(marker)}, codes=(2,))
    assert rows[entry["file"]]["error"] and not marker.exists()

    rows, _ = evaluate_json(tmp_path, path, "--trust-code", "--pixels", entry["input_scale"],
                            env={"LEGACY_MARKER": str(marker)})
    assert marker.exists()  # the same file does run its code once the user trusts it
    assert abs(rows[entry["file"]]["accuracy"] - entry["test_accuracy"]) <= 0.0003


# --- older formats, rewritten from the files above ----------------------------------------

def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of ``source`` whose stored model config ``change`` rewrote (weights untouched)."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        file.attrs["model_config"] = json.dumps(change(config))
        file.attrs["keras_version"] = "2.2.4"
    return target


def as_keras_2_2(config: dict) -> dict:
    """A Sequential config as Keras <= 2.2 wrote it: the bare layer list, the input shape on
    the first layer, initializers that carry a dtype."""
    layers = [layer for layer in config["config"]["layers"] if layer["class_name"] != "InputLayer"]
    input_layer = config["config"]["layers"][0]["config"]
    layers[0]["config"]["batch_input_shape"] = input_layer["batch_input_shape"]
    for layer in layers:
        for key, value in layer["config"].items():
            if key.endswith("_initializer") and isinstance(value, dict):
                value["config"]["dtype"] = "float32"
    return {"class_name": "Sequential", "config": layers}


def as_tensorflow_op_layers(config: dict) -> dict:
    """A functional config as TF 2.0-2.3 wrote ``tf.cast(x) / 255``: TensorFlowOpLayer, in a
    model whose class is still called "Model"."""
    config["class_name"] = "Model"
    ops = {"cast": "Cast", "math.truediv": "RealDiv"}
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "TFOpLambda":
            entry = layer["inbound_nodes"][0]
            constant = entry[3].get("y")
            layer["class_name"] = "TensorFlowOpLayer"
            layer["config"] = {"name": layer["config"]["name"], "trainable": True,
                               "dtype": "float32",
                               "node_def": {"name": layer["config"]["function"],
                                            "op": ops[layer["config"]["function"]],
                                            "input": [entry[0]], "attr": {}},
                               "constants": {} if constant is None else {"1": constant}}
            layer["inbound_nodes"] = [[[entry[0], entry[1], entry[2], {}]]]
    return config


@pytest.mark.parametrize("made,change", [("tf2.12_mlp_input_shape.h5", as_keras_2_2),
                                         ("tf2.12_cnn_batch_input_shape.h5", as_keras_2_2),
                                         ("tf2.12_functional_cast_div.h5",
                                          as_tensorflow_op_layers)])
def test_older_config_forms_load_and_score_the_same(tmp_path, mnist, made, change):
    from mnistkit.score.evaluation import score_file

    entry = next(e for e in OWN_MANIFEST if e["file"] == made)
    old = rewrite(OWN_MODELS / made, tmp_path / f"old_{made}", change)
    row, _ = score_file(old, mnist, pixels=entry["input_scale"])
    assert row.error is None, row.error
    assert abs(row.accuracy - entry["test_accuracy"]) <= 0.0003


# --- the repairs, one by one (pure JSON) -------------------------------------------------

def layer(class_name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": class_name.lower(), **config}}


def test_sequential_gets_an_input_layer_from_batch_input_shape():
    config = {"class_name": "Sequential", "config": [
        layer("Dense", units=10, batch_input_shape=[None, 784], activation="softmax_v2",
              kernel_initializer={"class_name": "VarianceScaling",
                                  "config": {"distribution": "normal", "dtype": "float32"}})]}
    before = copy.deepcopy(config)
    repaired = legacy.repair_config(config)
    assert config == before  # a repaired copy; the stored config stays as it was
    first, dense = repaired["config"]["layers"]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, 784]
    assert "batch_input_shape" not in dense["config"]
    assert "kernel_initializer" not in dense["config"]  # only training needs it
    assert dense["config"]["activation"] == "softmax"

    built_by_fit = {"class_name": "Sequential", "config": {"layers": [  # batch size of fit()
        layer("InputLayer", batch_input_shape=[32, 28, 28]), layer("Flatten")]}}
    first = legacy.repair_config(built_by_fit)["config"]["layers"][0]
    assert first["config"]["batch_shape"] == [None, 28, 28]


def test_tf_ops_become_standard_layers_and_others_are_refused():
    def functional(op_layer):
        return {"class_name": "Functional", "config": {"layers": [op_layer]}}

    truediv = {**layer("TFOpLambda", function="math.truediv"),
               "inbound_nodes": [["input_1", 0, 0, {"y": 255.0, "name": None}]]}
    repaired = legacy.repair_config(functional(truediv))["config"]["layers"][0]
    assert repaired["class_name"] == "Rescaling"
    assert repaired["config"]["scale"] == pytest.approx(1 / 255)
    assert repaired["inbound_nodes"] == [[["input_1", 0, 0, {}]]]

    subtract = {"class_name": "TensorFlowOpLayer", "config": {
        "name": "tf_op_layer_sub", "node_def": {"op": "Sub"}, "constants": {"1": 0.5}},
        "inbound_nodes": [[["input_1", 0, 0, {}]]]}
    repaired = legacy.repair_config(functional(subtract))["config"]["layers"][0]
    assert (repaired["config"]["scale"], repaired["config"]["offset"]) == (1.0, -0.5)

    reshape = {**layer("TFOpLambda", function="reshape"),
               "inbound_nodes": [["input_1", 0, 0, {"shape": [-1, 28, 28, 1], "name": None}]]}
    expand = {**layer("TFOpLambda", function="expand_dims"),
              "inbound_nodes": [["input_1", 0, 0, {"axis": 1}]]}
    model = {"class_name": "Functional", "config": {"layers": [
        layer("InputLayer", name="input_1", batch_input_shape=[None, 28, 28]), reshape,
        expand]}}
    _, reshape, expand = legacy.repair_config(model)["config"]["layers"]
    assert reshape["class_name"] == "Reshape" and reshape["config"]["target_shape"] == [28, 28, 1]
    assert expand["class_name"] == "Reshape" and expand["config"]["target_shape"] == [1, 28, 28]

    reduce = {**layer("TFOpLambda", function="math.reduce_max"),
              "inbound_nodes": [["input_1", 0, 0, {"axis": 1}]]}
    with pytest.raises(legacy.LegacyError, match=r"uses TensorFlow op tf\.math\.reduce_max"):
        legacy.repair_config(functional(reduce))


def test_axes_that_keras_3_would_drop_are_kept():
    config = {"class_name": "Sequential", "config": {"layers": [
        layer("InputLayer", batch_input_shape=[None, 28, 28]),
        layer("Normalization", axis=[]), layer("LayerNormalization", axis=[1, 2]),
        layer("BatchNormalization", axis=[3], fused=True)]}}
    _, norm, layer_norm, batch_norm = legacy.repair_config(config)["config"]["layers"]
    assert norm["config"]["axis"] is None and norm["module"] == "keras.layers"
    assert layer_norm["config"]["axis"] == [1, 2] and layer_norm["module"] == "keras.layers"
    assert "module" not in batch_norm and "fused" not in batch_norm["config"]


def test_lambda_layers_are_found_anywhere_and_keras_1_is_refused():
    inner = {"class_name": "Sequential", "config": {"layers": [layer("Lambda", function=[])]}}
    outer = {"class_name": "Functional", "config": {"layers": [inner]}}
    assert legacy.stored_code(outer) == ["lambda"]
    with pytest.raises(legacy.LegacyError, match="Keras 1.2.2"):
        legacy.repair_config(outer, keras_version="1.2.2")


def test_reason_names_the_cause_not_the_config():
    from mnistkit.read.loading import reason

    error = TypeError("Error when deserializing class 'Dense' using config={'name': 'dense', "
                      "'units': 10, 'kernel_initializer': {'class_name': 'GlorotUniform'}}.\n\n"
                      "Exception encountered: GlorotUniform.__init__() got an unexpected "
                      "keyword argument 'dtype'")
    text = reason(error)
    assert "unexpected keyword argument 'dtype'" in text and "layer Dense" in text
    assert "units" not in text


def test_theano_kernels_are_flipped_back(tmp_path, mnist):
    """Keras 2 files saved under Theano hold convolution kernels flipped (Theano's
    convolution flips them): a TensorFlow file rewritten that way must score the same."""
    from mnistkit.score.evaluation import score_file

    entry = next(e for e in OWN_MANIFEST if e["file"].endswith("lenet_32x32.h5"))
    theano = tmp_path / "theano.h5"
    shutil.copy(OWN_MODELS / entry["file"], theano)
    with h5py.File(theano, "r+") as file:
        file.attrs["backend"] = "theano"
        weights = file["model_weights"]
        for name in weights:
            for key in list(weights[name].attrs["weight_names"]):
                if name.startswith("conv2d") and key.endswith("kernel:0"):
                    kernel = weights[name][key][()]
                    weights[name][key][...] = kernel[::-1, ::-1]
    row, _ = score_file(theano, mnist, pixels=entry["input_scale"])
    assert row.error is None, row.error
    assert abs(row.accuracy - entry["test_accuracy"]) <= 0.0003

    with h5py.File(theano, "r+") as file:  # the same kernels taken as TensorFlow's: worse
        file.attrs["backend"] = "tensorflow"
    unflipped, _ = score_file(theano, mnist, pixels=entry["input_scale"])
    assert unflipped.accuracy < entry["test_accuracy"] - 0.05


# --- .keras zips of Keras 2.13-2.14, as written on Linux and on Windows -----------------------

KERAS_2_14_ZIP = OWN_MODELS / "tf2.14_mlp.keras"  # made by make_keras_2_14_zip.py there
KERAS_2_14_ACCURACY = 0.9132  # what tf.keras 2.14.1 gave it on the 10,000 test images


def as_written_on_windows(source: Path, target: Path) -> Path:
    """The zip as tf.keras 2.13/2.14 writes it on Windows: each layer's path in the weights
    file joined with os.path.join, so "\\" before the "/vars/N" that it writes as such."""
    import io
    import zipfile

    with zipfile.ZipFile(source) as zipped, zipfile.ZipFile(target, "w") as copy:
        for member in zipped.infolist():
            data = zipped.read(member)
            if member.filename.endswith(".h5"):
                renamed = io.BytesIO()
                with h5py.File(io.BytesIO(data), "r") as weights, \
                        h5py.File(renamed, "w") as out:
                    out.attrs.update(weights.attrs)
                    names = []
                    weights.visit(names.append)
                    for name in names:
                        if isinstance(weights[name], h5py.Dataset):
                            *layer, vars_, index = name.split("/")
                            out.create_dataset("\\".join(layer) + f"/{vars_}/{index}",
                                               data=weights[name][()])
                assert any("\\" in key for key in _keys(renamed))
                data = renamed.getvalue()
            copy.writestr(member.filename, data)
    return target


def _keys(weights) -> list[str]:
    names = []
    with h5py.File(weights, "r") as file:
        file.visit(names.append)
    return names


@pytest.mark.slow
def test_keras_2_14_zips_read_as_written_on_linux_and_on_windows(tmp_path):
    windows = as_written_on_windows(KERAS_2_14_ZIP, tmp_path / "tf2.14_mlp_windows.keras")
    rows, _ = evaluate_json(tmp_path, KERAS_2_14_ZIP, windows)
    for name in (KERAS_2_14_ZIP.name, windows.name):
        assert rows[name]["error"] is None, rows[name]["error"]
        assert rows[name]["input_scale"] == "0-1"
        assert abs(rows[name]["accuracy"] - KERAS_2_14_ACCURACY) <= 0.0003, rows[name]
