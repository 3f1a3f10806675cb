"""Training end to end on a small real subset: it learns, saves, reloads, records and guards."""

import json

import numpy as np
import pytest

from mnistkit.read.loading import load_model_file
from mnistkit.score.evaluation import evaluate_model
from mnistkit.train.training import TrainingError, train_and_evaluate
from tests.conftest import training_config


def train(script, small_mnist, tmp_path, *argv):
    module, config = training_config(script, "--output", str(tmp_path / "model.h5"),
                                     "--quiet", *argv)
    record = train_and_evaluate(module.build_model, config, small_mnist)
    return record, tmp_path / "model.h5"


@pytest.mark.parametrize("script,argv,floor", [
    ("train_logreg", ["--epochs", "3", "--batch-size", "32"], 0.8),
    ("train_cnn", ["--epochs", "2", "--batch-size", "32", "--arch", "deeper"], 0.8),
])
def test_short_training_beats_chance_by_far(small_mnist, tmp_path, script, argv, floor):
    record, path = train(script, small_mnist, tmp_path, *argv)
    assert record["test"]["accuracy"] > floor  # chance is 0.10
    assert record["test"]["total"] == len(small_mnist.test_labels)
    assert path.exists()


def test_saved_h5_reloads_with_identical_predictions_and_a_full_record(small_mnist, tmp_path):
    record, path = train("train_mlp", small_mnist, tmp_path, "--epochs", "1")
    reloaded = load_model_file(path)
    again = evaluate_model(reloaded, small_mnist.test_images, small_mnist.test_labels,
                           keep_probabilities=True)
    assert again.accuracy == record["test"]["accuracy"]
    assert again.loss == pytest.approx(record["test"]["loss"], rel=1e-6)

    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["params"] == 407_050
    assert saved["arguments"]["epochs"] == 1 and saved["arguments"]["batch_size"] == 128
    assert len(saved["history"]["loss"]) == 1 and "val_accuracy" in saved["history"]
    assert saved["train_seconds"] > 0 and saved["backend"] == "tensorflow"
    assert {"python", "keras", "tensorflow"} <= saved["versions"].keys()
    assert saved["device"].startswith(("CPU", "GPU"))
    assert len(saved["test"]["per_class_accuracy"]) == 10


def test_augmenting_model_reloads_without_custom_code(small_mnist, tmp_path):
    record, path = train("train_cnn", small_mnist, tmp_path, "--arch", "modern", "--epochs", "1")
    reloaded = load_model_file(path)  # safe mode: random layers are plain Keras layers
    again = evaluate_model(reloaded, small_mnist.test_images, small_mnist.test_labels)
    assert again.accuracy == record["test"]["accuracy"]  # augmentation is off at inference
    assert record["arguments"]["schedule"] == "onecycle"


def test_label_smoothing_trains_towards_softer_targets_and_saves_a_plain_model(small_mnist,
                                                                              tmp_path):
    record, path = train("train_mlp", small_mnist, tmp_path, "--epochs", "2",
                         "--label-smoothing", "0.2")  # with the default validation split
    assert record["arguments"]["label_smoothing"] == 0.2
    assert record["test"]["accuracy"] > 0.8 and "val_accuracy" in record["history"]
    sharp, sharp_path = train("train_mlp", small_mnist, tmp_path / "sharp", "--epochs", "2")
    images = small_mnist.test_images[:200].reshape(-1, 784) / 255

    def confidence(model_path):
        return load_model_file(model_path).predict(images, verbose=0).max(axis=1).mean()

    # trained towards 0.82 for the right digit rather than 1: less certain, higher test loss
    assert confidence(path) < confidence(sharp_path) - 0.05
    assert sharp["test"]["loss"] < record["test"]["loss"]


def test_same_seed_gives_identical_weights(small_mnist, tmp_path):
    runs = [train("train_cnn", small_mnist, tmp_path / name, "--epochs", "1", "--seed", "7")
            for name in ("a", "b")]
    assert runs[0][0]["test"]["accuracy"] == runs[1][0]["test"]["accuracy"]
    assert runs[0][0]["history"] == runs[1][0]["history"]
    weights = [load_model_file(path).get_weights() for _, path in runs]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))
    other, _ = train("train_cnn", small_mnist, tmp_path / "c", "--epochs", "1", "--seed", "8")
    assert other["history"] != runs[0][0]["history"]


def test_target_accuracy_stops_early_and_says_on_what(small_mnist, tmp_path):
    record, _ = train("train_logreg", small_mnist, tmp_path, "--epochs", "20",
                      "--validation-split", "0", "--target-accuracy", "0.5")
    assert record["epochs_run"] < 20
    assert record["target_accuracy"]["measured_on"] == "test"
    assert record["target_accuracy"]["reached_epoch"] == record["epochs_run"]
    assert record["history"]["test_accuracy"][-1] >= 0.5


def test_nan_loss_stops_training_and_keeps_the_good_model(small_mnist, tmp_path):
    record, path = train("train_logreg", small_mnist, tmp_path, "--epochs", "1")
    good = path.read_bytes()
    with pytest.raises(TrainingError, match="loss became"):
        train("train_mlp", small_mnist, tmp_path, "--epochs", "3", "--learning-rate", "1e9",
              "--optimizer", "sgd")
    assert path.read_bytes() == good
    assert json.loads(path.with_suffix(".json").read_text())["model"] == "logreg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5", "model.json", "model.png"]


def test_validation_split_holds_out_the_last_images(small_mnist, tmp_path):
    record, _ = train("train_logreg", small_mnist, tmp_path, "--epochs", "1",
                      "--validation-split", "0.5")
    assert "val_accuracy" in record["history"]
    record, _ = train("train_logreg", small_mnist, tmp_path, "--epochs", "1",
                      "--validation-split", "0")
    assert "val_accuracy" not in record["history"]
    assert np.isfinite(record["test"]["loss"])


@pytest.mark.parametrize("argv", [[], ["--arch", "fast"], ["--precision", "mixed"]])
def test_the_training_step_is_traced_once(small_mnist, tmp_path, monkeypatch, argv):
    # Keras creates the metrics' variables inside the first trace, and TensorFlow then traces
    # the step again: half a second of every run, which the scripts now spare.
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traced = []
    original = TensorFlowTrainer.train_step

    def counting(self, data):
        traced.append(1)  # train_step runs in Python only while a graph is traced
        return original(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counting)
    record, _ = train("train_cnn", small_mnist, tmp_path, "--epochs", "2", *argv)
    assert len(traced) == 1
    assert record["test"]["accuracy"] > 0.5  # chance is 0.10


def test_jax_over_several_cpu_devices_keeps_one_step_in_flight():
    # With 64 steps queued per call, XLA's CPU client deadlocked under load: one
    # step per call there, each awaited when NanGuard reads its loss. Elsewhere 64 a call.
    from mnistkit.train.compiling import STEPS_PER_EXECUTION, steps_per_execution
    from mnistkit.train.devices import Placement

    cpu = "CPU: Intel(R) Xeon(R) Processor (2 cores)"
    assert steps_per_execution(Placement(device=cpu, engine="DataParallel", replicas=2)) == 1
    assert steps_per_execution(Placement(device="GPU: NVIDIA H200", engine="DataParallel",
                                          replicas=8)) == STEPS_PER_EXECUTION
    assert steps_per_execution(Placement(device=cpu)) == STEPS_PER_EXECUTION
