"""Devices, mixed precision, data parallelism over devices and over processes, and backends.

Every case runs the scripts as users do, each in a fresh process: a process's backend, its
devices and its strategy are fixed once it has computed anything. The CPU stands in for
several devices (split in two) and for several machines (two processes on 127.0.0.1).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # whole processes on every backend; minutes

BACKENDS = ("tensorflow", "jax", "torch")
NO_GPU = {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, mnist):
    """6,000 training images (quick to learn from) and the whole test set, as mnist.npz."""
    folder = tmp_path_factory.mktemp("mnist")
    np.savez(folder / "mnist.npz", x_train=mnist.train_images[:6000],
             y_train=mnist.train_labels[:6000], x_test=mnist.test_images,
             y_test=mnist.test_labels)
    return folder


def start(*argv, backend="tensorflow", env=None):
    environment = {**os.environ, "KERAS_BACKEND": backend, **(env or {})}
    return subprocess.Popen([sys.executable, *map(str, argv)], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(*argv, backend="tensorflow", env=None):
    process = start(*argv, backend=backend, env=env)
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()  # never left behind, whatever it waits for
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def train(data_dir, output, *argv, backend="tensorflow", env=None):
    """Train the deeper CNN for two epochs; the run's JSON record."""
    result = run("train_cnn.py", "--data", data_dir, "--output", output, "--epochs", "2",
                 "--validation-split", "0", "--no-plot", *argv, backend=backend, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(output.with_suffix(".json").read_text())


def evaluated(data_dir, *models, backend="tensorflow"):
    """{file name: evaluate.py's row} for ``models``, run on ``backend`` without any strategy."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "results.json"
        result = run("evaluate.py", *models, "--data", data_dir, "--json", report,
                     backend=backend)
        assert result.returncode == 0, result.stderr
        rows = json.loads(report.read_text())["models"]
    return {row["path"].rsplit("/", 1)[-1]: row for row in rows}


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distribute_over_two_cpu_devices(data_dir, tmp_path, backend):
    # In the parallel lane, beside other tests: on JAX it once deadlocked (or, with XLA's
    # 40 s timeout, aborted) when the cores were busy; it must not.
    one = train(data_dir, tmp_path / "one.h5", "--batch-size", "64", backend=backend)
    # Per-device batch 32 on each of two devices: the same global batch of 64.
    two = train(data_dir, tmp_path / "two.h5", "--batch-size", "32", "--distribute",
                "--cpu-devices", "2", backend=backend)

    engine = {"tensorflow": "MirroredStrategy", "jax": "DataParallel"}[backend]
    assert two["placement"] == {"device": two["device"], "precision": "float32",
                                "engine": engine, "replicas": 2, "processes": 1}
    assert one["placement"]["engine"] is None and one["placement"]["replicas"] == 1
    assert two["train_images"] == one["train_images"] == 6000
    # Same data, same global batch, same number of steps: the same accuracy, give or take
    # the different order in which two devices add up their gradients.
    assert two["test"]["accuracy"] > 0.9
    assert abs(two["test"]["accuracy"] - one["test"]["accuracy"]) < 0.02
    # The saved model is a plain one: it loads and scores the same on the default backend.
    assert evaluated(data_dir, tmp_path / "two.h5")["two.h5"]["accuracy"] == \
        two["test"]["accuracy"]


@pytest.mark.alone
def test_two_processes_train_one_model_and_only_the_first_saves(data_dir, tmp_path):
    with socket.socket() as probe:  # a free port for JAX's coordinator
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "together.h5"
    processes = [
        start("train_cnn.py", "--data", data_dir, "--output", output, "--epochs", "2",
              "--validation-split", "0.1", "--batch-size", "32", "--distribute", "--no-plot",
              backend="jax",
              env={"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
                   "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                   "KERAS_DISTRIBUTION_PROCESS_ID": str(index)})
        for index in (0, 1)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "data-parallel over 2 devices (DataParallel, process" in stdout

    first, second = (stdout for stdout, _ in outputs)
    assert f"saved {output}" in first
    assert f"process 1 of 2: {output} is saved by process 0" in second
    assert not any(line.startswith("saved ") for line in second.splitlines())
    # Both trained the same model: each tested its own copy and got the same result.
    result_line = [line for line in first.splitlines() if line.startswith("test accuracy")]
    assert result_line and result_line[0] in second
    assert sorted(path.name for path in tmp_path.iterdir()) == ["together.h5", "together.json"]

    record = json.loads(output.with_suffix(".json").read_text())
    assert record["placement"]["processes"] == 2 and record["placement"]["replicas"] == 2
    assert record["train_images"] == 5400  # 6,000 less the 10% validation split, in two halves
    assert record["test"]["accuracy"] > 0.9
    assert evaluated(data_dir, output)["together.h5"]["accuracy"] == record["test"]["accuracy"]


@pytest.fixture(scope="module")
def model_per_backend(data_dir, tmp_path_factory):
    """The deeper CNN trained on each backend: {backend: (path, record)}."""
    folder = tmp_path_factory.mktemp("backends")
    return {backend: (folder / f"{backend}.h5",
                      train(data_dir, folder / f"{backend}.h5", "--batch-size", "32",
                            backend=backend))
            for backend in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_from_every_backend_score_the_same_on(backend, model_per_backend, data_dir):
    rows = evaluated(data_dir, *(path for path, _ in model_per_backend.values()),
                     backend=backend)
    for trained_on, (path, record) in model_per_backend.items():
        assert record["backend"] == trained_on
        assert record["test"]["accuracy"] > 0.9
        assert rows[path.name]["accuracy"] == record["test"]["accuracy"], (trained_on, backend)
        assert rows[path.name]["errors"] == record["test"]["errors"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_predict_runs_on(backend, model_per_backend, data_dir):
    path, _ = model_per_backend["tensorflow"]
    result = run("predict.py", "--model", path, "--data", data_dir, "--test-index", "0",
                 "--json", backend=backend)
    assert result.returncode == 0, result.stderr
    [answer] = json.loads(result.stdout)
    assert answer["predicted"] == 7 and abs(sum(answer["probabilities"]) - 1) < 1e-4


def test_mixed_precision_trains_in_bfloat16_and_saves_float32(data_dir, tmp_path):
    record = train(data_dir, tmp_path / "mixed.h5", "--mixed-precision", "--batch-size", "32",
                   env=NO_GPU)
    assert record["placement"]["precision"] == "mixed_bfloat16"  # on a CPU; float16 on GPUs
    assert record["test"]["accuracy"] > 0.9

    model = keras.models.load_model(tmp_path / "mixed.h5", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert evaluated(data_dir, tmp_path / "mixed.h5")["mixed.h5"]["accuracy"] == \
        record["test"]["accuracy"]


def test_precision_auto_is_bfloat16_on_cpus_that_have_it_and_float32_elsewhere(data_dir,
                                                                              tmp_path):
    from mnistkit import runtime

    # The deeper CNN's default is --precision auto.
    auto = train(data_dir, tmp_path / "auto.h5", "--epochs", "1", env=NO_GPU)
    expected = "mixed_bfloat16" if runtime.cpu_has_bfloat16() else "float32"
    assert auto["arguments"]["precision"] == "auto"
    assert auto["placement"]["precision"] == expected
    plain = train(data_dir, tmp_path / "plain.h5", "--epochs", "1", "--precision", "float32",
                  env=NO_GPU)
    assert plain["placement"]["precision"] == "float32"
    on_jax = train(data_dir, tmp_path / "jax.h5", "--epochs", "1", backend="jax", env=NO_GPU)
    assert on_jax["placement"]["precision"] == "float32"  # not measured to pay there
    assert abs(auto["test"]["accuracy"] - plain["test"]["accuracy"]) < 0.01


@pytest.mark.parametrize("flags,expected", [
    ("fpu vme avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4, Intel Cooper Lake
    ("fpu avx512f amx_bf16 amx_tile", True),            # Intel Sapphire Rapids
    ("fpu sse2 avx2 fma avx512f", False),               # AVX-512 without bfloat16
])
def test_cpu_has_bfloat16_reads_the_cpu_flags(tmp_path, flags, expected):
    from mnistkit import runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert runtime.cpu_has_bfloat16(str(cpuinfo)) is expected
    assert runtime.cpu_has_bfloat16(str(tmp_path / "absent")) is False  # not Linux


def test_device_cpu_is_used_and_recorded(data_dir, tmp_path):
    record = train(data_dir, tmp_path / "cpu.h5", "--device", "cpu", "--epochs", "1")
    assert record["device"].startswith("CPU: ")
    assert record["arguments"]["device"] == "cpu"


@pytest.mark.parametrize("argv,backend,env,message", [
    (["--device", "gpu"], "tensorflow", NO_GPU, "error: --device gpu: no GPU is visible"),
    (["--device", "gpu"], "jax", NO_GPU, "error: --device gpu: no GPU is visible"),
    (["--distribute"], "torch", {}, "error: --distribute: Keras has no data-parallel engine"),
    (["--distribute"], "tensorflow",
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                               "task": {"type": "worker", "index": 0}})},
     "error: --distribute: TF_CONFIG names several workers"),
    (["--cpu-devices", "2"], "tensorflow", {}, "--cpu-devices: only has an effect with"),
])
def test_impossible_placements_are_refused_in_one_line(argv, backend, env, message, data_dir,
                                                       tmp_path):
    result = run("train_cnn.py", "--data", data_dir, "--output", tmp_path / "m.h5", *argv,
                 backend=backend, env=env)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
