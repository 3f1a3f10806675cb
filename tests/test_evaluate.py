"""evaluate.py end to end: project models, other people's layouts, and files that must fail."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, training_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_mnist):
    """Two project models, three foreign layouts and four files that cannot be evaluated."""
    import keras
    from keras import layers

    from mnistkit.train.training import train_and_evaluate

    folder = tmp_path_factory.mktemp("models")
    for script, argv, name in (("train_logreg", [], "logreg"),
                               ("train_cnn", ["--arch", "simple"], "cnn")):
        module, config = training_config(script, "--epochs", "2", "--batch-size", "32", "--quiet",
                                         "--output", str(folder / f"{name}.h5"), *argv)
        train_and_evaluate(module.build_model, config, small_mnist)

    images = small_mnist.train_images.astype("float32") / 255
    foreign = {
        "flat_28x28.h5": (keras.Sequential([keras.Input((28, 28)), layers.Flatten(),
                                            layers.Dense(10, activation="softmax")]), images),
        "channels_first_logits.h5": (keras.Sequential([
            keras.Input((1, 28, 28)),
            layers.Conv2D(4, 3, activation="relu", data_format="channels_first"),
            layers.Flatten(), layers.Dense(10)]), images.reshape(-1, 1, 28, 28)),
    }
    for name, (model, inputs) in foreign.items():
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
            from_logits=name.endswith("logits.h5")))
        model.fit(inputs, small_mnist.train_labels, epochs=2, verbose=0)
        model.save(folder / name)

    keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(), layers.Dense(10)]).save(
        folder / "cifar_shaped.h5")  # takes MNIST padded and in 3 channels, untrained
    keras.Sequential([keras.Input((28, 28, 2)), layers.Flatten(), layers.Dense(10)]).save(
        folder / "two_channels.h5")
    keras.Sequential([keras.Input((784,)), layers.Dense(3)]).save(folder / "three_classes.h5")
    (folder / "notes.h5").write_text("not a model")
    (folder / "truncated.h5").write_bytes((folder / "cnn.h5").read_bytes()[:4000])
    return folder


def evaluate(*argv):
    return subprocess.run([sys.executable, "evaluate.py", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_every_model_gets_a_row_and_bad_files_a_reason(model_dir, tmp_path):
    report = tmp_path / "results.json"
    result = evaluate(*sorted(model_dir.glob("*.h5")), "--json", report)
    assert result.returncode == 1, result.stderr  # some failed, some evaluated
    rows = json.loads(report.read_text())["models"]
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert len(rows) == 9
    for row in rows:  # the fields scripts rely on, in every row
        assert {"file", "accuracy", "error", "input_scale", "warning"} <= row.keys()
        assert (row["accuracy"] is None) == (row["error"] is not None)

    for name in ("logreg.h5", "cnn.h5", "flat_28x28.h5", "channels_first_logits.h5"):
        assert by_name[name]["error"] is None
        assert by_name[name]["total"] == 10_000  # the whole test set, always
        assert by_name[name]["accuracy"] > 0.7
        assert by_name[name]["errors"] == round((1 - by_name[name]["accuracy"]) * 10_000)
    assert by_name["logreg.h5"]["params"] == 7_850
    assert "adam, 2 epochs, batch 32" in by_name["logreg.h5"]["training"]

    for name in ("logreg.h5", "cnn.h5", "flat_28x28.h5", "channels_first_logits.h5"):
        assert by_name[name]["input_scale"] == "0-1"  # auto finds the project's own scale
        assert by_name[name]["warning"] is None
    assert by_name["cifar_shaped.h5"]["error"] is None  # loads, but scores near chance
    assert "near chance" in by_name["cifar_shaped.h5"]["warning"]
    assert "does not take 28x28" in by_name["two_channels.h5"]["error"]
    assert "not 10 classes" in by_name["three_classes.h5"]["error"]
    assert "not a model file: text" in by_name["notes.h5"]["error"]
    assert "truncated" in by_name["truncated.h5"]["error"]

    accuracies = [row["accuracy"] for row in rows if row["error"] is None]
    assert accuracies == sorted(accuracies, reverse=True)  # best first, failures last
    assert all(row["error"] for row in rows[len(accuracies):])
    for row in rows[:len(accuracies)]:  # the printed table shows the same numbers
        assert f"{row['accuracy']:.4f} | {row['errors']}/10000 | {row['loss']:.4f}" in result.stdout
    assert "| 0-1 (auto) |" in result.stdout and "warning: near chance" in result.stdout


@pytest.mark.slow
def test_json_says_how_sure_how_calibrated_and_how_costly(model_dir, tmp_path):
    results, report = tmp_path / "two.json", tmp_path / "report"
    result = evaluate(model_dir / "logreg.h5", model_dir / "cnn.h5", "--json", results,
                      "--report", report)
    assert result.returncode == 0, result.stderr
    assert results.stat().st_size < 20_000  # no per-image arrays in the JSON
    data = json.loads(results.read_text())
    rows = data["models"]
    for row in rows:
        low, high = row["interval"]
        assert low < row["accuracy"] < high and high - low < 0.03  # 10,000 images: narrow
        assert 0 <= row["ece"] < 0.5 and row["nll"] == row["loss"]
        assert row["bytes"] == (model_dir / row["path"].rsplit("/", 1)[-1]).stat().st_size
        assert 0 < row["latency"]["ms_per_image_batch1"] < 1000
        assert row["latency"]["images_per_second_batch1000"] > 100
        assert row["corruption_accuracy"] is None and row["mean_corruption_accuracy"] is None
        assert "predicted" not in row
        assert f"{row['interval'][0]:.4f}–{row['interval'][1]:.4f} | {row['ece']:.4f}" \
            in result.stdout

    (pair,) = data["comparisons"]  # two models: one pair, the better one first
    assert (pair["a"], pair["b"]) == (rows[0]["file"], rows[1]["file"])
    right = [row["total"] - row["errors"] for row in rows]
    assert pair["only_a"] - pair["only_b"] == right[0] - right[1]  # only the discordant count
    assert 0 < pair["p_value"] <= 1 and pair["real"] == (pair["p_value"] < 0.05)
    assert f"- {pair['verdict']}" in result.stdout
    assert pair["verdict"].startswith(("cnn.h5 beats logreg.h5", "logreg.h5 beats cnn.h5",
                                       "cnn.h5 and logreg.h5: no real difference",
                                       "logreg.h5 and cnn.h5: no real difference"))

    text = (report / "report.md").read_text()
    for heading in ("## Which differences are real", "## Calibration", "## Cost"):
        assert heading in text
    assert "## Corrupted images" not in text  # only with --corruptions
    for picture in ("reliability.png", "disagreements.png"):
        assert (report / picture).stat().st_size > 1000 and f"]({picture})" in text
    assert json.loads((report / "report.json").read_text())["comparisons"] == [pair]
    assert not any(path.name.startswith(".") for path in report.iterdir())  # none drafted left


@pytest.mark.slow  # the first run builds the 15 corrupted test sets (about a minute)
def test_corruptions_give_each_model_its_accuracy_under_each(model_dir, tmp_path):
    results = tmp_path / "corrupted.json"
    result = evaluate(model_dir / "logreg.h5", "--corruptions", "--json", results,
                      "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Corrupted images" in report and "![test image 0 under each" in report
    assert (tmp_path / "report" / "corruptions.png").read_bytes()[:4] == b"\x89PNG"
    (row,) = json.loads(results.read_text())["models"]
    accuracies = row["corruption_accuracy"]
    assert list(accuracies) == ["shot_noise", "impulse_noise", "glass_blur", "motion_blur",
                                "shear", "scale", "rotate", "brightness", "translate",
                                "stripe", "fog", "spatter", "dotted_line", "zigzag",
                                "canny_edges"]
    assert all(0 <= value <= 1 for value in accuracies.values())
    assert row["mean_corruption_accuracy"] == pytest.approx(np.mean(list(accuracies.values())))
    assert row["mean_corruption_accuracy"] < row["accuracy"]  # corrupted digits are harder
    assert accuracies["translate"] < row["accuracy"] - 0.2  # a single layer cannot follow
    assert "| corrupted |" in result.stdout
    assert f"| {row['mean_corruption_accuracy']:.4f} |" in result.stdout


def test_accuracy_matches_what_training_reported(model_dir, tmp_path):
    record = json.loads((model_dir / "logreg.json").read_text())
    # Not into model_dir: a JSON file there that is no model's record gets a row of its own
    result = evaluate(model_dir / "logreg.h5", "--json", tmp_path / "one.json")
    assert result.returncode == 0, result.stderr
    row = json.loads((tmp_path / "one.json").read_text())["models"][0]
    assert record["test"]["total"] == 1000  # trained against the small subset...
    assert row["total"] == 10_000  # ...but evaluate.py always uses all 10,000


def test_ensemble_row_averages_the_models(model_dir, small_mnist):
    result = evaluate(model_dir / "logreg.h5", model_dir / "cnn.h5", "--ensemble")
    assert result.returncode == 0, result.stderr
    assert "| ensemble of 2 |" in result.stdout


@pytest.mark.slow
def test_a_folder_stands_for_its_models(model_dir, tmp_path):
    result = evaluate(model_dir, "--json", tmp_path / "all.json")
    assert result.returncode == 1  # the folder holds the broken files too
    assert len(json.loads((tmp_path / "all.json").read_text())["models"]) == 9


def test_nothing_evaluable_exits_2(model_dir):
    result = evaluate(model_dir / "notes.h5", model_dir / "three_classes.h5")
    assert result.returncode == 2
    assert "not a model file: text" in result.stdout


def test_a_missing_file_is_refused_before_any_scoring(model_dir):
    result = evaluate(model_dir / "logreg.h5", model_dir / "missing.h5")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: no such file or folder: {model_dir / 'missing.h5'}\n"


def test_empty_models_folder_exits_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "evaluate.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "nothing to evaluate in models/" in result.stderr


def test_stored_code_is_never_run(tmp_path, small_mnist):
    import keras
    from keras import layers

    marker = tmp_path / "marker"
    # A Lambda whose function would leave a marker file if Keras ever called it.
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307
    keras.Sequential([keras.Input((784,)), layers.Lambda(touch), layers.Dense(10)]).save(
        tmp_path / "lambda.h5")
    marker.unlink(missing_ok=True)  # building the model above called it once

    result = evaluate(tmp_path / "lambda.h5")
    assert result.returncode == 2
    assert "stored Python code" in result.stdout
    assert not marker.exists()


def test_probabilities_and_logits_score_alike():
    from mnistkit.score.evaluation import as_probabilities

    logits = np.array([[2.0, -1.0, 0.5] + [0.0] * 7])
    probabilities = as_probabilities(logits)
    assert probabilities.sum() == pytest.approx(1) and probabilities.argmax() == 0
    assert as_probabilities(probabilities) is probabilities
    # An int8 softmax, dequantised: steps of 1/256 that sum to 1 +- 10/512, not logits
    quantised = np.round(np.array([[0.9, 0.05] + [0.05 / 8] * 8]) * 256) / 256
    assert quantised.sum() == pytest.approx(1.0117, abs=1e-4)
    np.testing.assert_allclose(as_probabilities(quantised), quantised / quantised.sum())
