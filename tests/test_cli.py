"""The command line: help without TensorFlow, and bad flags refused by the parser."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPTS = ["train_logreg.py", "train_mlp.py", "train_cnn.py"]


def run(*argv, **kwargs):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_states_every_default_and_loads_no_framework(script):
    probe = (f"import runpy, sys; sys.argv = [{script!r}, '--help']\n"
             f"try: runpy.run_path({script!r}, run_name='__main__')\n"
             "except SystemExit: pass\n"
             "print('LOADED', 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = run("-c", probe)
    assert result.returncode == 0, result.stderr
    for flag in ("--epochs", "--batch-size", "--optimizer", "--learning-rate",
                 "--validation-split", "--seed", "--output", "--data", "--quiet",
                 "--target-accuracy", "--device", "--precision", "--mixed-precision",
                 "--distribute", "--cpu-devices", "--label-smoothing"):
        assert flag in result.stdout
    assert result.stdout.count("default") >= 9
    assert "LOADED False" in result.stdout


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["--epochs", "two"], "--epochs: 'two' is not a whole number"),
    (["--batch-size", "-3"], "--batch-size: must be at least 1, got -3"),
    (["--validation-split", "1"], "--validation-split: must be in [0, 1), got 1"),
    (["--validation-split", "-0.1"], "--validation-split: must be in [0, 1)"),
    (["--validation-split", "nan"], "--validation-split: must be a finite number"),
    (["--learning-rate", "0"], "--learning-rate/--lr: must be above 0"),
    (["--optimizer", "adagrad"], "--optimizer: invalid choice: 'adagrad'"),
    (["--arch", "resnet"], "--arch: invalid choice: 'resnet'"),
    (["--target-accuracy", "1.5"], "--target-accuracy: must be in (0, 1]"),
    (["--label-smoothing", "1"], "--label-smoothing: must be in [0, 1), got 1"),
    (["--seed", "-1"], "--seed: must be at least 0, got -1"),
    (["--seed", str(2**32)], "--seed: must be at most 4,294,967,295"),
    (["--batch-size", str(10**20)], "--batch-size: must be at most 60,000"),
    (["--cpu-devices", "1000", "--distribute"], "--cpu-devices: must be at most 64"),
    (["--epochs", "1e3"], "--epochs: '1e3' is not a whole number"),
    (["--output", "model.pt"], "--output model.pt: the model file name must end in .h5"),
    (["--output", "m.ckpt.keras"], "--output m.ckpt.keras: the model file name must end in"),
])
def test_bad_flags_are_refused_with_a_clear_message(argv, message):
    result = run("train_cnn.py", *argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_is_one_clear_line(tmp_path):
    result = run("train_logreg.py", "--data", str(tmp_path / "nowhere"),
                 "--output", str(tmp_path / "m.h5"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "nowhere: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("script", ["train_logreg.py", "train_mlp.py", "train_cnn.py",
                                    "evaluate.py", "predict.py", "draw.py", "export.py"])
def test_outside_its_environment_a_script_says_what_to_install_in_one_line(script):
    # -S: no site-packages, as a bare system Python without the requirements
    result = subprocess.run([sys.executable, "-S", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: numpy and keras and tensorflow not installed for "
                                     "this Python")
    assert "source .venv/bin/activate" in result.stderr
    assert "pip install -r requirements.txt" in result.stderr
