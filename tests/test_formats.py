"""Keras' own habits: the native .keras format, and TensorBoard logs that --resume continues."""

import json
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mnistkit.read.loading import load_model_file
from mnistkit.score.evaluation import evaluate_model
from tests.conftest import ROOT, needs, training_config, wait_for_epoch


def run(script, *argv, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory, small_mnist):
    """A model trained with --output models/logreg.keras, in a folder of its own."""
    from mnistkit.train.training import train_and_evaluate

    folder = tmp_path_factory.mktemp("native")
    module, config = training_config("train_logreg", "--epochs", "2", "--quiet", "--output",
                                     str(folder / "models" / "logreg.keras"))
    record = train_and_evaluate(module.build_model, config, small_mnist)
    return folder, record


def test_keras_output_saves_the_native_format_with_its_record(keras_run, small_mnist):
    folder, record = keras_run
    model_path = folder / "models" / "logreg.keras"
    assert zipfile.is_zipfile(model_path)
    assert {"config.json", "model.weights.h5"} <= set(zipfile.ZipFile(model_path).namelist())
    assert sorted(p.name for p in model_path.parent.iterdir()) == [
        "logreg.json", "logreg.keras", "logreg.png"]
    assert json.loads((folder / "models" / "logreg.json").read_text())["file"] == "logreg.keras"
    again = evaluate_model(load_model_file(model_path), small_mnist.test_images,
                           small_mnist.test_labels)
    assert again.accuracy == record["test"]["accuracy"]


@pytest.mark.slow
def test_evaluate_and_predict_find_keras_files_like_h5(keras_run, mnist, tmp_path):
    folder, _ = keras_run
    result = run("evaluate.py", "--json", tmp_path / "rows.json", cwd=folder)  # models/
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())["models"]
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == ["logreg.keras"]
    full = evaluate_model(load_model_file(folder / "models" / "logreg.keras"),
                          mnist.test_images, mnist.test_labels)
    assert rows[0]["accuracy"] == full.accuracy and rows[0]["total"] == 10_000
    assert "adam, 2 epochs" in rows[0]["training"]  # the record beside the .keras file

    predicted = run("predict.py", "--test-index", "0", cwd=folder)  # default: best in models/
    assert predicted.returncode == 0, predicted.stderr
    assert "test image 0: 7 (true label 7)" in predicted.stdout
    assert "(model: models/logreg.keras, pixels 0-1)" in predicted.stdout


def test_damaged_keras_files_fail_their_rows_only(keras_run, tmp_path):
    folder, _ = keras_run
    whole = (folder / "models" / "logreg.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(whole[:len(whole) // 2])
    with zipfile.ZipFile(tmp_path / "no_config.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    (tmp_path / "good.keras").write_bytes(whole)
    result = run("evaluate.py", tmp_path, "--json", tmp_path / "rows.json")
    assert result.returncode == 1, result.stderr
    rows = {row["path"].rsplit("/", 1)[-1]: row
            for row in json.loads((tmp_path / "rows.json").read_text())["models"]}
    assert rows["good.keras"]["error"] is None and rows["good.keras"]["accuracy"] > 0.5
    assert rows["truncated.keras"]["error"] and rows["no_config.keras"]["error"]
    assert "Traceback" not in result.stdout + result.stderr


def scalars(folder):
    """{tag: {step: [values]}} read back from the event files under ``folder``."""
    from mnistkit.train.tensorboard_logs import read_scalars

    found = {}
    for step, tag, value in read_scalars(folder):
        found.setdefault(tag, {}).setdefault(step, []).append(value)
    return found


@pytest.mark.parametrize("backend", ["tensorflow",
                                     pytest.param("jax", marks=[pytest.mark.slow, needs("jax")]),
                                     pytest.param("torch",
                                                  marks=[pytest.mark.slow, needs("torch")])])
def test_tensorboard_logs_one_value_per_epoch(tmp_path, medium_npz, backend, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    result = run("train_mlp.py", "--epochs", "3", "--quiet", "--data", medium_npz,
                 "--output", tmp_path / "mlp.h5", "--tensorboard", tmp_path / "logs")
    assert result.returncode == 0, result.stderr
    [run_folder] = (tmp_path / "logs").iterdir()
    assert run_folder.name.startswith("mlp-")
    train, validation = scalars(run_folder / "train"), scalars(run_folder / "validation")
    record = json.loads((tmp_path / "mlp.json").read_text())
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert sorted(train[tag]) == [0, 1, 2] and all(len(v) == 1 for v in train[tag].values())
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert sorted(validation[tag]) == [0, 1, 2]
    assert [train["epoch_loss"][e][0] for e in range(3)] == pytest.approx(
        record["history"]["loss"], rel=1e-6)
    assert f"tensorboard --logdir {tmp_path / 'logs'}" in result.stdout


@pytest.mark.slow
def test_resumed_run_continues_the_same_curves(tmp_path, medium_npz):
    argv = [sys.executable, "train_mlp.py", "--epochs", "3", "--batch-size", "32", "--quiet",
            "--data", str(medium_npz), "--output", str(tmp_path / "mlp.h5"),
            "--tensorboard", str(tmp_path / "logs")]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_epoch(tmp_path / "mlp.ckpt.json", 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    [run_folder] = (tmp_path / "logs").iterdir()  # the same folder, continued
    train = scalars(run_folder / "train")
    # Each epoch exactly once, whether the kill came before or after epoch 1 was logged.
    assert {step: len(values) for step, values in train["epoch_loss"].items()} == \
        {0: 1, 1: 1, 2: 1}
    record = json.loads((tmp_path / "mlp.json").read_text())
    assert [train["epoch_loss"][e][0] for e in range(3)] == pytest.approx(
        record["history"]["loss"], rel=1e-6)


def test_tensorboard_without_the_package_is_refused_in_one_line(monkeypatch, capsys):
    import importlib.util

    from mnistkit.train.flags import parse_training_args

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    module, _ = training_config("train_logreg")
    with pytest.raises(SystemExit) as stop:
        parse_training_args(module.make_parser(), ["--tensorboard", "logs"])
    assert stop.value.code == 2
    assert "--tensorboard: the tensorboard package is not installed" in capsys.readouterr().err


def test_weights_of_keras_and_h5_saves_agree(keras_run, tmp_path):
    folder, _ = keras_run
    model = load_model_file(folder / "models" / "logreg.keras")
    model.save(tmp_path / "same.h5")
    assert all(np.array_equal(a, b) for a, b in zip(
        model.get_weights(), load_model_file(tmp_path / "same.h5").get_weights(), strict=True))
