"""The main flows in subprocesses as on Windows and as on macOS (tests/simulated), against the
same flows on this Linux: train one epoch, export, evaluate a folder of every format, predict
a picture, one request to draw.py; and the hostile cases under each (a memory bomb contained,
a worker gone when its parent is killed). A simulation is coarse: the project's own code sees
the other system's facts, the libraries stay Linux's (README, "On Windows and macOS")."""

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from mnistkit.system import process_running
from tests.conftest import ROOT, save_npz
from tests.platforms import SYSTEMS, run_python, simulated_env

pytestmark = pytest.mark.slow
PICTURE = ROOT / "docs" / "examples" / "photo_of_a_4.jpg"
LEGACY = ROOT / "tests" / "legacy_models" / "tf2.14_mlp.keras"
BOMB = ("import json\nfrom mnistkit.score.model_files import score_files\n"
        "from mnistkit.files.data import load_mnist\nfrom tests.hostile_tasks import HostileTasks\n"
        "if __name__ == '__main__':\n"
        "    rows, _ = score_files(['hungry.h5', 'greedy.h5', 'good.h5'],"
        " load_mnist().subset(100, 100), timeout=60, memory_gb=1, tasks=HostileTasks)\n"
        "    print(json.dumps([row.error for row, _ in rows]))\n")


@pytest.fixture(scope="module")
def npz(tmp_path_factory, mnist):
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    save_npz(mnist.subset(3000, len(mnist.test_labels)), path)
    return path


@pytest.fixture(scope="module")
def answers(npz, tmp_path_factory):
    """{system: what each flow answered}, Linux's first."""
    return {name: _flows(name, npz, tmp_path_factory.mktemp(name or "linux"))
            for name in (None, *SYSTEMS)}


def _ran(done: subprocess.CompletedProcess, what: str) -> str:
    assert done.returncode == 0 and "Traceback" not in done.stderr, f"{what}: {done.stderr}"
    return done.stdout


def _flows(name: str | None, npz, folder) -> dict:
    models = folder / "models"
    # float32 everywhere: --precision auto differs by system on purpose (bfloat16 where the
    # CPU has it and TensorFlow's build uses it: not on macOS), and so would the weights.
    _ran(run_python(name, "train_cnn.py", "--arch", "simple", "--epochs", "1", "--data", npz,
                    "--precision", "float32", "--output", models / "cnn.h5"), "train")
    _ran(run_python(name, "export.py", models / "cnn.h5", "--data", npz), "export")
    shutil.copy(LEGACY, models)
    _ran(run_python(name, "evaluate.py", models, "--data", npz, "--json", folder / "r.json"),
         "evaluate")
    rows = {Path(row["file"]).name: (row["accuracy"], row["error"])
            for row in json.loads((folder / "r.json").read_text())["models"]}
    predicted = _ran(run_python(name, "predict.py", PICTURE, "--model", models / "cnn.h5",
                                "--json"), "predict")
    record = json.loads((models / "cnn.json").read_text())
    return {"system": _ran(run_python(name, "-c", "from mnistkit import system\n"
                                      "print(system.SYSTEM)"), "system").strip(),
            "trained": record["test"]["accuracy"], "rows": rows,
            # Each system's run has a folder of its own: the answers without it.
            "predicted": json.loads(predicted.replace(str(folder), "")),
            "drawn": json.loads(json.dumps(_drawn(name, models / "cnn.h5")).replace(
                str(folder), "")),
            "plot": (models / "cnn.png").is_file()}


def _drawn(name: str | None, model) -> list:
    process = subprocess.Popen([sys.executable, "draw.py", "--model", str(model), "--port", "0"],
                               cwd=ROOT, env={**simulated_env(name), "PYTHONUNBUFFERED": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.monotonic() + 300
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if "http://" in line:
                url = line[line.index("http://"):].split()[0]
        assert url, f"draw.py served no page ({name})"
        request = urllib.request.Request(url + "api/predict", data=PICTURE.read_bytes(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["models"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_every_flow_works_under_each_system(answers):
    assert [answers[name]["system"] for name in answers] == ["linux", *SYSTEMS]
    for name, answer in answers.items():
        assert answer["plot"], name
        assert sorted(answer["rows"]) == sorted([
            "cnn.h5", "cnn_float.tflite", "cnn_int8.tflite", "cnn_float.onnx", "cnn_savedmodel",
            "tf2.14_mlp.keras"]), (name, answer["rows"])
        assert all(error is None for _, error in answer["rows"].values()), (name, answer)
        assert answer["rows"]["cnn.h5"][0] == answer["trained"], name


def test_each_system_gives_linuxs_answers(answers):
    linux = answers[None]
    for name in SYSTEMS:
        for key in ("trained", "rows", "predicted", "drawn"):
            assert answers[name][key] == linux[key], (name, key)


@pytest.mark.parametrize("name", [None, *SYSTEMS])
def test_a_memory_bomb_is_contained(name):
    said = _ran(run_python(name, "-c", BOMB, timeout=600), "bomb").strip().splitlines()[-1]
    hungry, greedy, good = json.loads(said)
    assert hungry.startswith("needed more than the 1 GB of memory"), (name, hungry)
    assert greedy.startswith("needed more than the 1 GB of memory"), (name, greedy)
    assert good is None, name


@pytest.mark.parametrize("name", SYSTEMS)
def test_evaluates_workers_are_gone_when_it_is_killed(name, npz, tmp_path):
    model = tmp_path / "m.keras"
    shutil.copy(LEGACY, model)  # any model: the test kills evaluate.py while a worker runs
    process = subprocess.Popen([sys.executable, "evaluate.py", str(model), "--data", str(npz)],
                               cwd=ROOT, env=simulated_env(name), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline, workers = time.monotonic() + 120, []
    while not workers and time.monotonic() < deadline:
        workers = [child.pid for child in psutil.Process(process.pid).children()
                   if "spawn_main" in " ".join(child.cmdline())]
        time.sleep(0.1)
    assert workers, f"no worker started ({name})"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while any(map(process_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(process_running, workers)), name
