"""Exports: the fast and modern CNNs written as SavedModel, TFLite (float and int8) and ONNX
and read back by evaluate.py's readers; layers ONNX cannot hold refused; export.py and
--export refusing bad input in one line; the checked, all-or-nothing export end to end."""

import subprocess
import sys

import numpy as np
import pytest

from mnistkit.read.loading import load_model
from mnistkit.score.evaluation import predict_probabilities
from mnistkit.train.config import TrainingConfig
from mnistkit.write.errors import ExportError
from mnistkit.write.formats import FORMATS, export_targets
from tests.conftest import ROOT, load_script, training_config

IMAGES = 300  # test images each export is compared on


def brief_model(arch: str, mnist):
    """The training script's CNN after one short epoch, its batch normalisation statistics
    measured on training images (a short run leaves them near 0 and 1, which would not tell
    a wrong translation of them from a right one)."""
    import keras

    keras.utils.set_random_seed(1)
    model = load_script("train_cnn").build_model(TrainingConfig("cnn", "x.h5", arch=arch))
    model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy")
    images = mnist.train_images[:2000, ..., None] / 255
    model.fit(images, mnist.train_labels[:2000], epochs=1, batch_size=64, verbose=0)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # the next call's statistics become the moving ones
    model(images[:500], training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


@pytest.fixture(scope="module", params=["fast", "modern"])
def exported(request, tmp_path_factory, small_mnist):
    """(arch, Keras model, {format: path}) with every format written."""
    from mnistkit.write.formats import calibration_images, write_exports

    model = brief_model(request.param, small_mnist)
    targets = export_targets(tmp_path_factory.mktemp("exports") / "cnn.h5", FORMATS)
    calibration = calibration_images(small_mnist.train_images)[..., None] / np.float32(255)
    write_exports(model, targets, calibration)
    return request.param, model, targets


@pytest.mark.slow  # writing every format of two trained CNNs: 13 s
def test_the_cnns_round_trip_in_every_format(exported, small_mnist):
    arch, model, targets = exported
    images = small_mnist.test_images[:IMAGES]
    expected = predict_probabilities(model, images)
    assert (expected.argmax(axis=1) == small_mnist.test_labels[:IMAGES]).mean() > 0.8, arch
    kinds = {"savedmodel": "saved_model", "tflite": "tflite", "tflite-int8": "tflite",
             "onnx": "onnx"}
    for name, path in targets.items():
        loaded, kind = load_model(path)  # the reader evaluate.py's worker uses
        assert kind == kinds[name]
        got = predict_probabilities(loaded, images)
        if name == "tflite-int8":
            assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.97, (arch, name)
            np.testing.assert_allclose(got, expected, atol=0.1, err_msg=f"{arch} {name}")
        else:
            np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1),
                                          err_msg=f"{arch} {name}")
            np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"{arch} {name}")
        assert loaded.count_params() >= model.count_params() * 0.99, (arch, name)


def test_exports_are_named_apart_from_the_models_record(tmp_path):
    from mnistkit.files.records import record_path

    names = {name: path.name for name, path in export_targets(tmp_path / "cnn.h5",
                                                              FORMATS).items()}
    assert names == {"savedmodel": "cnn_savedmodel", "tflite": "cnn_float.tflite",
                     "tflite-int8": "cnn_int8.tflite", "onnx": "cnn_float.onnx"}
    records = {record_path(path) for path in export_targets(tmp_path / "cnn.h5",
                                                             FORMATS).values()}
    assert record_path(tmp_path / "cnn.h5") not in records  # the model's record stays its own


def test_a_new_export_replaces_the_one_before_whole(tmp_path):
    from mnistkit.files.saving import OutputError, check_folder_target, move_into_place

    target, staged = tmp_path / "cnn_savedmodel", tmp_path / ".staged"
    for folder, text in ((target, "old"), (staged / "cnn_savedmodel", "new")):
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_text(text)
        (folder / "variables" / text).write_text(text)
    (staged / "cnn_float.onnx").write_text("new")
    check_folder_target(target)  # a SavedModel folder written before may be replaced
    move_into_place({staged / "cnn_savedmodel": target,
                     staged / "cnn_float.onnx": tmp_path / "cnn_float.onnx"})
    assert (target / "saved_model.pb").read_text() == "new"
    assert [path.name for path in (target / "variables").iterdir()] == ["new"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".staged", "cnn_float.onnx", "cnn_savedmodel"]  # nothing of the old one left
    (tmp_path / "plain").mkdir()
    (tmp_path / "link").symlink_to(target)
    for name, why in (("plain", "is a folder without saved_model.pb, not a SavedModel"),
                      ("cnn_float.onnx", "is a file, not a SavedModel"),
                      ("link", "is a symbolic link")):
        with pytest.raises(OutputError, match=why):
            check_folder_target(tmp_path / name)


def test_augmentation_and_dropout_layers_do_nothing_at_inference():
    """The layers the ONNX translation leaves out must really be the identity there."""
    import keras
    from keras import layers

    images = np.random.default_rng(1).random((4, 28, 28, 1), np.float32)
    for layer in (layers.Dropout(0.5), layers.SpatialDropout2D(0.5), layers.GaussianNoise(1),
                  layers.GaussianDropout(0.5), layers.AlphaDropout(0.5),
                  layers.RandomRotation(0.2), layers.RandomTranslation(0.2, 0.2),
                  layers.RandomZoom(0.2), layers.RandomFlip(), layers.RandomContrast(0.5),
                  layers.RandomBrightness(0.5, value_range=(0, 1))):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)),
                                      images, err_msg=type(layer).__name__)


@pytest.mark.parametrize("build,message", [
    (lambda layers: [layers.Conv2D(4, 3), layers.AveragePooling2D(2, name="pool"),
                     layers.Flatten(), layers.Dense(10)],
     "layer 'pool' (AveragePooling2D) has no translation (supported: Conv2D,"),
    (lambda layers: [layers.Conv2D(4, 3, dilation_rate=2, name="dilated"), layers.Flatten(),
                     layers.Dense(10)],
     "layer 'dilated' (Conv2D) is dilated or grouped"),
    (lambda layers: [layers.Flatten(), layers.Dense(10, activation="elu", name="last")],
     "layer 'last' (Dense) has activation 'elu'"),
    (lambda layers: [layers.Conv2D(4, 3), layers.ReLU(max_value=6, name="relu6"),
                     layers.Flatten(), layers.Dense(10)],
     "layer 'relu6' (ReLU) has a max_value, negative_slope or threshold"),
], ids=["unknown layer", "dilation", "activation", "capped relu"])
def test_a_layer_onnx_cannot_hold_is_refused_in_one_line(build, message):
    import re

    import keras
    from keras import layers

    from mnistkit.write.onnx_graph import keras_to_onnx

    model = keras.Sequential([keras.Input((28, 28, 1)), *build(layers)])
    with pytest.raises(ExportError, match=re.escape(message)) as caught:
        keras_to_onnx(model)
    assert "\n" not in str(caught.value)


def test_a_model_that_is_not_a_chain_is_refused():
    import keras
    from keras import layers

    from mnistkit.write.onnx_graph import keras_to_onnx

    inputs = keras.Input((784,))
    hidden = layers.Dense(16)(inputs)
    model = keras.Model(inputs, layers.Dense(10)(layers.Add()([hidden, layers.Dense(16)(inputs)])))
    with pytest.raises(ExportError, match="only chains of layers are translated"):
        keras_to_onnx(model)


def run_export(*argv):
    return subprocess.run([sys.executable, "export.py", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_export_py_refuses_a_bad_path_or_flag_in_one_line(tmp_path):
    (tmp_path / "notes.h5").write_text("not a model")
    (tmp_path / "cnn_savedmodel").mkdir()  # a folder of something else at a target
    (tmp_path / "cnn.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    for argv, code, line in (
            ([tmp_path / "missing.h5"], 1, f"error: {tmp_path / 'missing.h5'}: no such file"),
            ([tmp_path / "notes.h5"], 1, "not a model file: text"),
            ([tmp_path / "cnn.h5"], 1, "cnn_savedmodel: is a folder without saved_model.pb, "
                                       "not a SavedModel; refusing to replace it"),
            ([tmp_path / "notes.h5", "--formats", "onnx,bogus"], 2,
             "argument --formats: unknown format 'bogus' (choose from savedmodel, tflite, "
             "tflite-int8, onnx, separated by commas)")):
        result = run_export(*argv)
        assert result.returncode == code, result.stderr
        assert line in result.stderr.splitlines()[-1]
        assert code == 2 or result.stderr.count("\n") == 1  # the error alone
    assert not any(path.name.startswith(".") for path in tmp_path.iterdir())


def test_export_py_help_states_the_defaults_and_loads_no_framework():
    probe = ("import runpy, sys; sys.argv = ['export.py', '--help']\n"
             "try: runpy.run_path('export.py', run_name='__main__')\n"
             "except SystemExit: pass\n"
             "print('LOADED', 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert "(default: all: savedmodel,tflite,tflite-int8,onnx)" in " ".join(result.stdout.split())
    assert "LOADED False" in result.stdout


def test_the_training_flag_takes_known_formats_only(capsys):
    _, config = training_config("train_cnn", "--export", "onnx,savedmodel")
    assert config.export == ("savedmodel", "onnx")  # in FORMATS' order
    assert training_config("train_cnn")[1].export == ()
    with pytest.raises(SystemExit) as stop:
        training_config("train_cnn", "--export", "bogus")
    assert stop.value.code == 2
    assert "argument --export: unknown format 'bogus'" in capsys.readouterr().err


# --- end to end: trained, exported, checked, written; or nothing written ---------------------

@pytest.fixture(scope="module")
def trained_with_export(tmp_path_factory, small_mnist):
    """train_cnn.py --arch fast --export <all formats>, one epoch on the small set: the model's
    path and what the run printed."""
    import contextlib
    import io

    from mnistkit.train.training import train_and_evaluate

    output = tmp_path_factory.mktemp("trained") / "fast.h5"
    module, config = training_config("train_cnn", "--arch", "fast", "--epochs", "1",
                                     "--output", str(output), "--quiet", "--no-plot",
                                     "--export", ",".join(FORMATS))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        train_and_evaluate(module.build_model, config, small_mnist)
    return output, printed.getvalue()


@pytest.mark.slow
def test_training_with_export_writes_every_format_checked(trained_with_export):
    output, printed = trained_with_export
    targets = export_targets(output, FORMATS)
    assert all(path.exists() for path in targets.values())
    assert "| format | file | size | test accuracy | differing test images | ms/image (batch 1) |" \
        in printed
    for name in ("savedmodel", "tflite", "onnx"):
        row = next(line for line in printed.splitlines() if line.startswith(f"| {name} |"))
        assert row.split("|")[5].strip() in ("0", "1", "2"), row  # differing test images
    assert "wrote fast_savedmodel/, fast_float.tflite, fast_int8.tflite, fast_float.onnx" in printed
    assert not [path for path in output.parent.iterdir()
                if path.name.startswith(".")]  # no staging folder left


@pytest.mark.slow
def test_an_export_failing_its_check_writes_nothing(trained_with_export, small_mnist,
                                                    monkeypatch):
    from mnistkit.write import exports

    output, _ = trained_with_export
    targets = export_targets(output, FORMATS)
    before = {path: path.stat().st_mtime_ns for path in targets.values()}
    monkeypatch.setattr(exports, "INT8_TOLERANCE", -1.0)  # no int8 export can pass
    with pytest.raises(ExportError, match=r"tflite-int8: test accuracy .* points .* the Keras "
                                          r"model's .*; nothing exported"):
        exports.export_and_check(output, FORMATS, small_mnist, pixels="0-1")
    assert {path: path.stat().st_mtime_ns for path in targets.values()} == before
    assert not [path for path in output.parent.iterdir() if path.name.startswith(".")]
