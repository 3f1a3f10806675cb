"""Every format people save MNIST models in, told by content: Keras .h5 and .keras (also
renamed, also written by Keras 2), TensorFlow SavedModel folders, TFLite and ONNX files; the
real files of other people (../shared/real-models/formats) and own exports of one model."""

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnistkit.read.errors import ModelError
from mnistkit.read.loading import load_model
from mnistkit.read.sniffing import FORMATS, detect_format
from tests.conftest import ROOT

REAL_FORMATS = Path(__file__).resolve().parents[2] / "shared" / "real-models" / "formats"


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory, small_mnist):
    """A small CNN trained briefly, saved as .keras: the original the exports must match."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(small_mnist.train_images[..., None] / 255, small_mnist.train_labels, epochs=2,
              batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("original") / "cnn.keras"
    model.save(path)
    return model, path


# --- 1. the format told by the content ---------------------------------------------------

def test_formats_are_told_by_content_not_by_name(tmp_path, keras_model):
    _, keras_path = keras_model
    h5 = tmp_path / "model.keras"  # an HDF5 file under a .keras name
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    renamed_zip = tmp_path / "download"  # a .keras zip without its suffix
    shutil.copy(keras_path, renamed_zip)
    tflite = tmp_path / "model.bin"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(100))
    onnx = tmp_path / "model.pb"
    onnx.write_bytes(b"\x08\x07\x12\x07tf2onnx" + bytes(10))
    saved = tmp_path / "export"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    found = [detect_format(path) for path in (h5, renamed_zip, saved, tflite, onnx)]
    assert found == list(FORMATS)

    (tmp_path / "notes.h5").write_text("not a model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "photos.keras", "w") as archive:
        archive.writestr("a.txt", "x")
    (tmp_path / "plain").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01\x12\x10" + bytes(16))
    for name, why in (("saved_model.pb", "a SavedModel's saved_model.pb; name the folder"),
("notes.h5", "not a model file: text"),
                      ("empty.onnx", "not a model file: an empty file"),
                      ("photos.keras", "not a model file: a zip archive without config.json"),
                      ("plain", "not a model file: a folder without saved_model.pb")):
        with pytest.raises(ModelError, match=why):
            detect_format(tmp_path / name)


def test_renamed_keras_files_load_as_their_content_says(tmp_path, keras_model, small_mnist):
    model, keras_path = keras_model
    inputs = small_mnist.test_images[:50, ..., None] / 255
    expected = model.predict(inputs, verbose=0)
    h5 = tmp_path / "saved_as_h5.keras"
    model.save(tmp_path / "original.h5")
    (tmp_path / "original.h5").rename(h5)
    renamed = tmp_path / "model.bin"
    shutil.copy(keras_path, renamed)
    for path, kind in ((h5, "h5"), (renamed, "keras")):
        loaded, found = load_model(path)
        assert found == kind
        np.testing.assert_allclose(loaded.predict(inputs, verbose=0), expected, atol=1e-5)


def test_a_keras_2_zip_gets_the_repairs_of_keras_2_files(tmp_path, keras_model, small_mnist):
    """A .keras zip as Keras 2.15 wrote it: metadata names 2.15.0 and the first layer keeps
    ``batch_input_shape``, which Keras 3 refuses ("Unrecognized keyword arguments")."""
    model, keras_path = keras_model
    old = tmp_path / "keras2.keras"
    with zipfile.ZipFile(keras_path) as source, zipfile.ZipFile(old, "w") as target:
        config = json.loads(source.read("config.json"))
        layers = config["config"]["layers"]
        layers[0]["config"]["batch_input_shape"] = layers[0]["config"].pop("batch_shape")
        layers[1]["config"]["batch_input_shape"] = [None, 28, 28, 1]
        target.writestr("config.json", json.dumps(config))
        target.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
        target.writestr("model.weights.h5", source.read("model.weights.h5"))
    loaded, kind = load_model(old)
    assert kind == "keras"
    inputs = small_mnist.test_images[:50, ..., None] / 255
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0),
                               model.predict(inputs, verbose=0), atol=1e-5)


# --- 2. a folder: a row for every entry ----------------------------------------------------

def test_a_folder_lists_every_entry_but_records_hidden_files_and_checkpoints(tmp_path):
    from mnistkit.read.finding import find_models, folder_entries, model_files

    for name in ("cnn.h5", "cnn.json", "cnn.png", "notes.txt", "manifest.json", ".cnn.h5.tmp",
                 "run.ckpt.npz", "run.ckpt.json", "lite.tflite", "net.onnx", "no_suffix"):
        (tmp_path / name).write_bytes(b"x")
    for folder in ("export", "plain"):
        (tmp_path / folder).mkdir()
    (tmp_path / "export" / "saved_model.pb").write_bytes(b"")
    listed = [path.name for path in folder_entries(tmp_path)]
    assert listed == ["cnn.h5", "export", "lite.tflite", "manifest.json", "net.onnx",
                      "no_suffix", "notes.txt", "plain"]
    assert [path.name for path in model_files(tmp_path)] == [
        "cnn.h5", "export", "lite.tflite", "net.onnx"]
    # A SavedModel folder named is a model, not a folder to search
    assert find_models([tmp_path / "export"]).models == [tmp_path / "export"]
    found = find_models([tmp_path])  # "x" in each file: unknown content, not named a model
    assert [path.name for path in found.models] == ["cnn.h5", "export", "lite.tflite",
                                                    "net.onnx"]
    assert {path.name: why for path, why in found.skipped} == {
        "manifest.json": "text, not HDF5, a .keras zip, TFLite, ONNX or a SavedModel folder",
        "no_suffix": "text, not HDF5, a .keras zip, TFLite, ONNX or a SavedModel folder",
        "notes.txt": "text, not HDF5, a .keras zip, TFLite, ONNX or a SavedModel folder",
        "plain": "a folder without saved_model.pb (not a SavedModel)"}


def test_a_folder_of_models_and_what_people_keep_beside_them(tmp_path):
    """Logs, notes, pictures, TensorBoard's folders and ONNX data files are skipped with why;
    anything named or made like a model gets its row, readable or not."""
    from mnistkit.read.finding import find_models

    (tmp_path / "mnist.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "mnist.onnx.data").write_bytes(bytes(100))
    (tmp_path / "train.log").write_text("epoch 1 loss 0.3\n")
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    (tmp_path / "runs" / "train").mkdir(parents=True)
    (tmp_path / "runs" / "train" / "events.out.tfevents.1.host").write_bytes(b"x")
    (tmp_path / "broken.h5").write_bytes(b"")  # named a model: its row says it is empty
    (tmp_path / "renamed").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(20))  # an HDF5 file
    found = find_models([tmp_path])
    assert [path.name for path in found.models] == ["broken.h5", "mnist.onnx", "renamed"]
    skipped = {path.name: why for path, why in found.skipped}
    assert skipped["mnist.onnx.data"] == "the external data of mnist.onnx, read with it"
    assert skipped["runs"] == "a folder of TensorBoard logs"
    assert skipped["train.log"].startswith("text")
    assert sorted(skipped) == ["digit.png", "mnist.onnx.data", "runs", "train.log"]


# --- 3-6. own exports of one model, damaged and hostile files, all in one folder -----------

@pytest.fixture(scope="module")
def exports(tmp_path_factory, keras_model, small_mnist):
    """A folder with the CNN in every format, files that are damaged or must be refused, and
    entries that are not models; evaluate.py's rows for it, by name, and the marker file the
    file-writing models would write."""
    from tests import model_exports as make

    model, keras_path = keras_model
    root = tmp_path_factory.mktemp("exports")
    folder = root / "models"
    folder.mkdir()
    shutil.copy(keras_path, folder / "cnn.keras")
    saved = make.export_saved_model(model, folder / "saved")
    for kind in ("float", "batch1", "uint8"):
        make.to_tflite(saved, folder / f"cnn_{kind}.tflite", kind, small_mnist.train_images)
    for layout in ("nchw", "flat", "rgb"):
        make.to_onnx(model, folder / f"{layout}.onnx", layout)
    make.to_onnx(model, folder / "nhwc_logits.onnx", "nhwc", logits=True)
    make.with_open_output(folder / "nchw.onnx", folder / "open_output.onnx")
    import keras

    untrained = keras.models.clone_model(model)  # fresh weights: a look-alike of no use
    untrained.build((None, 28, 28, 1))
    make.to_onnx(untrained, folder / "untrained.onnx", "nchw")

    whole = (folder / "cnn_float.tflite").read_bytes()
    (folder / "damaged.tflite").write_bytes(whole[:len(whole) // 2])
    whole = (folder / "nchw.onnx").read_bytes()
    (folder / "damaged.onnx").write_bytes(whole[:len(whole) // 2])
    shutil.copytree(saved, folder / "damaged_saved")
    whole = (saved / "saved_model.pb").read_bytes()
    (folder / "damaged_saved" / "saved_model.pb").write_bytes(whole[:len(whole) // 2])
    make.with_custom_domain(folder / "nchw.onnx", folder / "custom_domain.onnx")
    (root / "secret.bin").write_bytes(bytes(40))
    make.with_external_data(folder / "nchw.onnx", folder / "outside.onnx", "../secret.bin")
    marker = root / "written"
    make.writer_saved_model(marker, folder / "writes_file")
    make.writer_tflite(marker, folder / "writes_file.tflite")
    (folder / "notes.txt").write_text("not a model")
    (folder / "plain").mkdir()
    from tests.test_legacy import evaluate_json

    rows, printed = evaluate_json(root, folder, codes=(1,))
    return rows, printed, marker


@pytest.mark.slow
def test_a_folder_of_every_format_gives_one_row_per_entry(exports):
    rows, printed, _ = exports  # evaluate.py exits 1: some failed
    assert sorted(rows) == sorted([
        "cnn.keras", "saved", "cnn_float.tflite", "cnn_batch1.tflite", "cnn_uint8.tflite",
        "nchw.onnx", "flat.onnx", "rgb.onnx", "nhwc_logits.onnx", "open_output.onnx",
        "untrained.onnx", "damaged.tflite",
        "damaged.onnx", "damaged_saved", "custom_domain.onnx", "outside.onnx", "writes_file",
        "writes_file.tflite"])
    assert "11 of 18 models evaluated" in printed
    assert "skipped 2 entries that are not models:" in printed  # listed once, under the table
    assert "notes.txt: text, not HDF5" in printed
    assert "plain: a folder without saved_model.pb (not a SavedModel)" in printed


def test_every_export_scores_as_its_keras_original(exports):
    rows, _, _ = exports
    original = rows["cnn.keras"]
    assert original["error"] is None and original["accuracy"] > 0.8
    assert original["format"] == "keras"
    for name, kind in (("saved", "saved_model"), ("cnn_float.tflite", "tflite"),
                       ("cnn_batch1.tflite", "tflite"), ("nchw.onnx", "onnx"),
                       ("flat.onnx", "onnx"), ("rgb.onnx", "onnx"),
                       ("nhwc_logits.onnx", "onnx"), ("open_output.onnx", "onnx"),
                       ("cnn_uint8.tflite", "tflite")):
        row = rows[name]
        assert row["error"] is None, (name, row["error"])
        assert row["format"] == kind and row["total"] == 10_000
        assert row["input_scale"] == "0-1", (name, row["scale_accuracies"])
        tolerance = 0.01 if name == "cnn_uint8.tflite" else 0.0005  # int8 rounding
        assert abs(row["accuracy"] - original["accuracy"]) <= tolerance, (name, row["accuracy"])
        assert row["latency"]["ms_per_image_batch1"] > 0
        assert row["warning"] is None
    assert "near chance" in rows["untrained.onnx"]["warning"]  # warned as any format is
    saved = Path(rows["saved"]["file"])
    assert rows["saved"]["bytes"] == sum(path.stat().st_size for path in saved.rglob("*")
                                         if path.is_file())
    # The parameters: the Keras count, read from each format's weights
    for name in ("saved", "nchw.onnx"):
        assert rows[name]["params"] == original["params"], name
    assert original["params"] <= rows["cnn_float.tflite"]["params"] <= original["params"] + 8


def test_damaged_and_hostile_files_get_a_reason_and_never_run(exports):
    rows, _, marker = exports
    reasons = {
        "damaged.onnx": "damaged ONNX file",
        "damaged_saved": "damaged saved_model.pb",
        "damaged.tflite": "damaged TFLite file (its FlatBuffer ends early",
        "custom_domain.onnx": "custom domain 'com.example.evil'",
        "outside.onnx": "external data '../secret.bin' outside the model's folder: refused",
        "writes_file": "SavedModel uses op WriteFile, which touches the world: refused",
        "writes_file.tflite": "TFLite custom op WriteFile",
    }
    for name, why in reasons.items():
        assert rows[name]["accuracy"] is None and why in rows[name]["error"], rows[name]
    assert not marker.exists()  # refused before anything ran


def test_a_missing_optional_package_is_named_in_one_line(monkeypatch, exports, tmp_path):
    from mnistkit.read.onnx_files import load_onnx

    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ModelError, match=r"needs onnxruntime and onnx \(pip install "
                                         r"onnxruntime==1.32.0 onnx==1.23.2\)"):
        load_onnx(tmp_path / "any.onnx")


# --- the real files of other people --------------------------------------------------------

@pytest.mark.slow
def test_every_real_model_in_every_format_scores_as_its_authors_fed_it(tmp_path):
    from tests.test_legacy import evaluate_json

    if not REAL_FORMATS.is_dir():  # as tests/test_legacy.py: the real files live outside
        pytest.skip(f"{REAL_FORMATS} is absent: the real other-people models live outside "
                    "the repository")
    rows, printed = evaluate_json(tmp_path, REAL_FORMATS, codes=(0,))
    manifest = json.loads((REAL_FORMATS / "manifest.json").read_text())
    assert sorted(rows) == sorted(entry["file"] for entry in manifest)
    assert "manifest.json: text" in printed  # skipped, listed under the table
    kinds = {"keras": "keras", "savedmodel": "saved_model", "tflite": "tflite", "onnx": "onnx"}
    for entry in manifest:
        row = rows[entry["file"]]
        assert row["error"] is None, (entry["file"], row["error"])
        assert abs(row["accuracy"] - entry["accuracy_with_authors_input"]) <= 0.005, \
            (entry["file"], row["accuracy"], row["input_scale"])
        stated = entry["format"].lower().replace(" ", "").replace("tf1", "")
        assert any(word in stated and row["format"] == kind for word, kind in kinds.items()), \
            (entry["format"], row["format"])
        assert row["warning"] is None


def test_predict_and_draw_serve_every_format_through_the_model_tasks(exports, keras_model,
                                                                      small_mnist):
    """predict.py and draw.py load through the worker's ModelTasks: ``load`` then ``predict``."""
    from mnistkit.score.model_tasks import ModelTasks

    model, _ = keras_model
    images = small_mnist.test_images[:20]
    expected = model.predict(images[..., None] / 255, verbose=0).argmax(axis=1)
    folder = Path(exports[0]["cnn.keras"]["file"]).parent
    tasks = ModelTasks(small_mnist)
    for name in ("saved", "cnn_batch1.tflite", "cnn_uint8.tflite", "nhwc_logits.onnx"):
        scale, params = tasks.load(str(folder / name), "auto", False)
        assert scale == "0-1" and params > 13_000
        probabilities = tasks.predict(str(folder / name), images)
        assert probabilities.shape == (20, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-3)  # logits too
        assert (probabilities.argmax(axis=1) == expected).mean() >= 0.95, name


def test_predict_py_reads_a_saved_model_folder(exports):
    import subprocess
    import sys

    folder = Path(exports[0]["saved"]["file"])
    result = subprocess.run([sys.executable, "predict.py", "--model", str(folder),
                             "--test-index", "0"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test image 0: 7 (true label 7)" in result.stdout
    assert f"(model: {folder}, pixels 0-1)" in result.stdout


# --- each reader's refusals, in detail ------------------------------------------------------

def test_onnx_files_that_cannot_be_mnist_models_say_why(tmp_path, exports):
    import onnx
    from onnx import TensorProto, helper

    from tests import model_exports as make

    def model(inputs, nodes, name):
        graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 10])])
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", 13)]).SerializeToString())
        return path

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])
    cases = {
        model([image, helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 784])],
              [helper.make_node("Add", ["x", "z"], ["y"])], "two_inputs"):
            "has 2 inputs and 1 outputs; expected one of each",
        model([helper.make_tensor_value_info("x", TensorProto.STRING, ["N", 784])],
              [helper.make_node("Identity", ["x"], ["y"])], "strings"):
            "input 'x' is not a tensor of numbers",
        model([helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
              [helper.make_node("Identity", ["x"], ["y"])], "no_shape"):
            "'x' declares no shape",
        model([image], [helper.make_node("Conv", ["x"], ["y"])], "bad_graph"):
            "ONNX Runtime cannot run it",
        make.with_external_data(Path(exports[0]["nchw.onnx"]["file"]),
                                tmp_path / "missing.onnx", "bias.bin"):
            "its external data 'bias.bin' is missing",
    }
    for path, why in cases.items():
        with pytest.raises(ModelError, match=re.escape(why)):
            load_model(path)
    onnx.load(str(tmp_path / "two_inputs.onnx"))  # the files themselves are valid ONNX

    # External data in the model's own folder is read: the same model, the same outputs
    source = Path(exports[0]["nchw.onnx"]["file"])
    bias = make.output_bias(onnx.load(str(source)))
    (tmp_path / "bias.bin").write_bytes(bias.raw_data)
    inputs = np.random.default_rng(1).random((5, 1, 28, 28), np.float32)
    np.testing.assert_allclose(load_model(tmp_path / "missing.onnx")[0].predict(inputs),
                               load_model(source)[0].predict(inputs), atol=1e-6)


def test_saved_models_without_a_usable_graph_say_why(tmp_path, exports):
    from tensorflow.core.protobuf import saved_model_pb2

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "saved_model.pb").write_bytes(b"")
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    proto = saved_model_pb2.SavedModel()
    proto.meta_graphs.add().meta_info_def.tags.append("serve")
    (unsigned / "saved_model.pb").write_bytes(proto.SerializeToString())
    no_variables = tmp_path / "no_variables"
    shutil.copytree(exports[0]["saved"]["file"], no_variables)
    shutil.rmtree(no_variables / "variables")
    for path, why in ((empty, "saved_model.pb holds no graph"),
                      (unsigned, "no signature of the SavedModel takes one 28x28 image and "
                                 "gives 10 classes (signatures: none)"),
                      (no_variables, "TensorFlow cannot load the SavedModel (signature "
                                     "'serving_default': ")):
        with pytest.raises(ModelError, match=re.escape(why)):
            load_model(path)


def test_tflite_files_that_cannot_be_read_say_why(tmp_path, exports):
    import flatbuffers
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema

    good = Path(exports[0]["cnn_float.tflite"]["file"]).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(good), 0)
    model.buffers[-1].offset, model.buffers[-1].size = len(good) * 2, 16
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    (tmp_path / "beyond.tflite").write_bytes(bytes(builder.Output()))

    two = tf.function(lambda a, b: tf.nn.softmax(a + b), input_signature=[
        tf.TensorSpec([1, 784], tf.float32)] * 2)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([two.get_concrete_function()])
    (tmp_path / "two_inputs.tflite").write_bytes(converter.convert())
    for name, why in (("beyond.tflite", "a weight buffer lies beyond its end"),
                      ("two_inputs.tflite", "has 2 inputs and 1 outputs; expected one of each")):
        with pytest.raises(ModelError, match=re.escape(why)):
            load_model(tmp_path / name)


def test_files_over_the_size_bound_are_refused_unread(monkeypatch, exports):
    from mnistkit.read import runners

    monkeypatch.setattr(runners, "MAX_MODEL_BYTES", 1000)
    for name in ("nchw.onnx", "cnn_float.tflite", "saved"):
        with pytest.raises(ModelError, match="at most 1,000"):
            load_model(exports[0][name]["file"])
