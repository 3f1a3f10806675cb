"""The command line: help without TensorFlow, bad flags refused by the parser in one line, and
missing files said before anything heavy loads."""

import os
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
    assert result.stderr.startswith("error: this Python (")
    assert "lacks numpy, keras, " in result.stderr  # the first ones it looks for
    assert "tensorflow: activate the project's environment" in result.stderr
    assert "source .venv/bin/activate" in result.stderr
    assert "pip install -r requirements.txt" in result.stderr


@pytest.mark.parametrize("argv,line", [
    (["evaluate.py", "--jsn", "x.json"], "error: unrecognized arguments: --jsn (did you mean "
                                          "--json?)"),
    (["predict.py", "--modle", "m.h5", "a.png"], "error: unrecognized arguments: --modle (did "
                                                  "you mean --model?)"),
    (["export.py", "m.h5", "--format", "onnx,bogus"], "error: argument --formats: unknown "
                                                       "format 'bogus'"),
    (["draw.py", "--prot", "8000"], "error: unrecognized arguments: --prot 8000 (did you mean "
                                    "--port?)"),
    (["train_cnn.py", "--arch", "modrn"], "error: argument --arch: invalid choice: 'modrn' "
                                          "(choose from 'simple', 'deeper', 'large', 'fast', "
                                          "'modern') (did you mean modern?)"),
    (["train_mlp.py", "--optimiser", "sgd"], "error: unrecognized arguments: --optimiser sgd "
                                             "(did you mean --optimizer?)"),
    (["evaluate.py", "--frobnicate"], "error: unrecognized arguments: --frobnicate (--help "
                                      "lists the flags)"),
    (["export.py"], "error: the following arguments are required: model"),
])
def test_a_flag_error_is_one_line_with_the_likely_flag(argv, line):
    result = run(*argv)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line), \
        result.stderr


def test_help_still_shows_the_usage():
    result = run("evaluate.py", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: evaluate.py")


NO_MNIST = "/nonexistent/mnist"  # were MNIST read first, its error would come instead


@pytest.mark.parametrize("argv,line,code", [
    (["evaluate.py", "missing.h5"], "error: no such file or folder: missing.h5", 2),
    (["predict.py", "--model", "missing.h5", "docs/examples/drawn_7.png"],
     "error: --model missing.h5: no such file or folder", 2),
    (["predict.py", "--model", "README.md", "docs/examples/drawn_7.png"],
     "error: README.md: not a model file: text", 2),
    (["export.py", "missing.h5"], "error: missing.h5: no such file", 1),
])
def test_a_missing_file_is_said_before_the_backend_or_mnist_load(argv, line, code):
    probe = (f"import runpy, sys; sys.argv = {argv!r}\n"
             "try: runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "except SystemExit as stop: code = stop.code\n"
             "print('LOADED', 'tensorflow' in sys.modules or 'keras' in sys.modules, code)")
    result = run("-c", probe, env={**os.environ, "MNIST_DATA": NO_MNIST})
    assert result.stderr.startswith(line) and len(result.stderr.splitlines()) == 1, \
        result.stderr
    assert f"LOADED False {code}" in result.stdout


def test_predict_says_which_pictures_are_missing_before_loading_anything(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    result = run("predict.py", "--model", str(tmp_path / "m.h5"), "gone.png", "away.jpg",
                 env={**os.environ, "MNIST_DATA": NO_MNIST})
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: gone.png: no such file",
                                          "error: away.jpg: no such file",
                                          "error: no picture to read"]


@pytest.mark.parametrize("script", ["evaluate.py", "export.py"])
def test_an_mnist_download_that_fails_is_one_line_without_backend_logs(script, tmp_path):
    model = tmp_path / "m.h5"  # a file that passes the checks made before MNIST loads
    model.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    offline = {"MNIST_DATA": "", "KERAS_HOME": str(tmp_path / "keras"),
               # a proxy that refuses: the download fails at once, with or without a network
               "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = run(script, str(model), env={**env, **offline})
    assert result.returncode in (1, 2)
    assert result.stderr.splitlines()[0].startswith("error: could not download MNIST"), \
        result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
