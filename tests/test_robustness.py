"""Nothing lost: kill -9 and --resume, Ctrl-C and SIGTERM, concurrent writers."""

import json
import signal
import subprocess
import sys

import pytest

from mnistkit.read.loading import load_model_file
from mnistkit.score.evaluation import evaluate_model
from tests.conftest import ROOT, ctrl_c_as_in_a_terminal, wait_for_epoch


def start(output, data, *argv):
    return subprocess.Popen(
        [sys.executable, "train_mlp.py", "--output", str(output), "--data", str(data),
         "--batch-size", "32", *argv], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal)


def test_killed_run_resumes_from_its_checkpoint(tmp_path, medium_npz, mnist):
    output = tmp_path / "mlp.h5"
    state = tmp_path / "mlp.ckpt.json"
    process = start(output, medium_npz, "--epochs", "3")
    wait_for_epoch(state, 1, process)
    process.send_signal(signal.SIGKILL)  # in epoch 2 of 3: no cleanup of any kind runs
    process.wait()
    assert not output.exists()
    assert json.loads(state.read_text())["epoch"] == 1

    resumed = start(output, medium_npz, "--epochs", "3", "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "resuming from" in stdout and "after epoch 1" in stdout
    record = json.loads(output.with_suffix(".json").read_text())
    assert len(record["history"]["loss"]) == 3 and record["epochs_run"] == 3
    assert not state.exists() and not (tmp_path / "mlp.ckpt.keras").exists()

    uninterrupted = start(tmp_path / "whole.h5", medium_npz, "--epochs", "3", "--quiet")
    assert uninterrupted.wait(timeout=300) == 0
    whole = json.loads((tmp_path / "whole.json").read_text())
    assert abs(record["test"]["accuracy"] - whole["test"]["accuracy"]) < 0.01
    reloaded = load_model_file(output)  # the resumed model is a whole, loadable model
    assert evaluate_model(reloaded, mnist.test_images, mnist.test_labels).accuracy == \
        record["test"]["accuracy"]


@pytest.mark.parametrize("signum,status,word", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated")])
def test_signals_stop_cleanly_and_keep_the_old_model(tmp_path, medium_npz, signum, status, word):
    output = tmp_path / "mlp.h5"
    output.write_bytes(b"the good model from before")
    output.with_suffix(".json").write_text('{"model": "before"}')
    process = start(output, medium_npz, "--epochs", "20")
    wait_for_epoch(tmp_path / "mlp.ckpt.json", 1, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith(f"{word}: {output} was not written; rerun with --resume")
    assert "Traceback" not in stderr
    assert output.read_bytes() == b"the good model from before"
    assert output.with_suffix(".json").read_text() == '{"model": "before"}'
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_two_runs_on_one_output_leave_one_complete_model(tmp_path, medium_npz, mnist):
    output = tmp_path / "mlp.h5"
    runs = [start(output, medium_npz, "--epochs", "1", "--quiet", "--seed", str(seed))
            for seed in (1, 2)]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    record = json.loads(output.with_suffix(".json").read_text())
    model = load_model_file(output)
    # The JSON belongs to the model beside it: the pair is renamed into place together.
    assert evaluate_model(model, mnist.test_images, mnist.test_labels).accuracy == \
        record["test"]["accuracy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.h5", "mlp.json", "mlp.png"]


def test_resume_with_other_settings_is_refused(tmp_path, medium_npz):
    output = tmp_path / "mlp.h5"
    process = start(output, medium_npz, "--epochs", "20", "--quiet")
    wait_for_epoch(tmp_path / "mlp.ckpt.json", 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    changed = start(output, medium_npz, "--epochs", "20", "--resume", "--optimizer", "sgd")
    _, stderr = changed.communicate(timeout=120)
    assert changed.returncode == 1
    assert "checkpoint was made with other settings (--optimizer)" in stderr
