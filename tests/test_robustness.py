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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
