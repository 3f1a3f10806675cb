"""Every format people save MNIST models in, told by content: Keras .h5 and .keras (also
renamed, also written by Keras 2), TensorFlow SavedModel folders, TFLite and ONNX files; the
real files of other people (../shared/real-models/formats) and own exports of one model."""

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnistkit.read.errors import ModelError
from mnistkit.read.loading import load_model
from mnistkit.read.sniffing import detect_format

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
    assert [detect_format(path) for path in (h5, renamed_zip, tflite, onnx, saved)] == [
        "h5", "keras", "tflite", "onnx", "saved_model"]

    (tmp_path / "notes.h5").write_text("not a model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "photos.keras", "w") as archive:
        archive.writestr("a.txt", "x")
    (tmp_path / "plain").mkdir()
    for name, why in (("notes.h5", "not a model file: text"),
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
    from mnistkit.files.records import find_models, folder_entries, model_files

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
    assert find_models([tmp_path / "export"]) == [tmp_path / "export"]
    assert [path.name for path in find_models([tmp_path])] == listed
