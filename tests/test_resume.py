"""A resumed run is the run that was started: killed anywhere, its final weights are identical."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnistkit.read.loading import load_model_file
from tests.conftest import ROOT, save_npz, wait_for_epoch

EPOCHS = 3


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, mnist):
    """2,400 training images: epochs of about a second, enough for every kill point."""
    path = tmp_path_factory.mktemp("resume") / "mnist.npz"
    save_npz(mnist.subset(2400, 500), path)
    return path


# One strong test per kind of model: plain dense layers (logreg, MLP), a CNN, and a CNN with
# random augmentation, batch normalisation and dropout (modern), each killed at another point.
KINDS = {"logreg": "right after a checkpoint", "mlp": "during epoch 1",
         "deeper": "during the last epoch", "modern": "during the last epoch"}


def command(output, data, kind, *extra):
    script = ["train_cnn.py", "--arch", kind] if kind in ("deeper", "modern") else [
        f"train_{kind}.py"]
    return [sys.executable, *script, "--epochs", str(EPOCHS),
            "--batch-size", "64", "--validation-split", "0.1", "--no-plot",
            "--data", str(data), "--output", str(output), *extra]


def weights(path):
    return load_model_file(path).get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_npz):
    """Each model trained once without interruption: what every resumed run must equal."""
    folder = tmp_path_factory.mktemp("whole")
    found = {}
    for kind in KINDS:
        result = subprocess.run(command(folder / f"{kind}.h5", small_npz, kind, "--quiet"),
                                cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        found[kind] = (weights(folder / f"{kind}.h5"),
                       json.loads((folder / f"{kind}.json").read_text()))
    return found


def kill_when(process, state_path, point):
    """SIGKILL ``process`` during epoch 1 (before any checkpoint), right after the first
    checkpoint, or during the last epoch."""
    if point == "during epoch 1":
        process.stdout.readline()  # the run's first line: it is about to train
        assert not state_path.exists()
    elif point == "right after a checkpoint":
        wait_for_epoch(state_path, 1, process)
    else:
        wait_for_epoch(state_path, EPOCHS - 1, process)
        time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path, small_npz, uninterrupted,
                                                            kind):
    from mnistkit.score.evaluation import evaluate_model

    point = KINDS[kind]
    output = tmp_path / f"{kind}.h5"
    state_path = tmp_path / f"{kind}.ckpt.json"
    process = subprocess.Popen(command(output, small_npz, kind), cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(process, state_path, point)
    assert not output.exists()
    killed_at = json.loads(state_path.read_text())["epoch"] if state_path.exists() else 0

    resumed = subprocess.run(command(output, small_npz, kind, "--resume"), cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"after epoch {killed_at}" if killed_at else "starting afresh") in resumed.stdout
    expected_weights, expected_record = uninterrupted[kind]
    got = weights(output)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected_weights, strict=True))
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["test"] == {**expected_record["test"], "seconds": record["test"]["seconds"]}
    assert record["history"] == expected_record["history"] and record["epochs_run"] == EPOCHS
    assert not state_path.exists() and not output.with_suffix(".ckpt.npz").exists()
    with np.load(small_npz) as data:  # the resumed model is a whole, loadable model
        assert evaluate_model(load_model_file(output), data["x_test"], data["y_test"]
                              ).accuracy == record["test"]["accuracy"]


@pytest.mark.slow
def test_resume_with_a_damaged_record_is_refused_in_one_line(tmp_path, small_npz):
    output = tmp_path / "deeper.h5"
    process = subprocess.Popen(command(output, small_npz, "deeper", "--epochs", "20"),
                               cwd=ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    kill_when(process, tmp_path / "deeper.ckpt.json", "right after a checkpoint")
    state_path = tmp_path / "deeper.ckpt.json"
    state = json.loads(state_path.read_text())
    for damage in ({**state, "epoch": "two"}, {**state, "settings": None}, [1, 2],
                   {k: v for k, v in state.items() if k != "history"}):
        state_path.write_text(json.dumps(damage))
        result = subprocess.run(command(output, small_npz, "deeper", "--epochs", "20",
                                        "--resume"),
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "cannot resume from it" in result.stderr and "Traceback" not in result.stderr
        assert not output.exists()


def test_checkpoint_from_before_label_smoothing_resumes_only_without_it(tmp_path):
    from mnistkit.train.checkpoint import Checkpoint, CheckpointError
    from mnistkit.train.config import TrainingConfig

    config = TrainingConfig(name="cnn", arch="deeper", output=str(tmp_path / "deeper.h5"))
    checkpoint = Checkpoint(config.output)
    older = {**Checkpoint.settings(config)}
    del older["label_smoothing"]  # written before the setting existed: no smoothing
    checkpoint.state_path.write_text(json.dumps(
        {"epoch": 1, "history": {}, "epoch_seconds": [1.0], "train_seconds": 1.0,
         "settings": older}))
    assert checkpoint.load_state(config)["epoch"] == 1
    with pytest.raises(CheckpointError, match="--label-smoothing"):
        checkpoint.load_state(config.replace(label_smoothing=0.1))
