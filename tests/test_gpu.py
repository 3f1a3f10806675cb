"""On a GPU, where Keras' backend sees one: a short training there, in float32 and in mixed
precision, whose saved model is plain float32 and scores the same on the CPU alone.

Where no GPU is visible (CI, most laptops) each test is reported as skipped, with the reason,
never as passed. benchmarks/gpu.py measures every script there.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def gpu() -> str:
    from mnistkit import backend, runtime

    backend.load_backend_quietly()
    device = runtime.device()
    if not device.startswith("GPU"):
        pytest.skip(f"not run: no GPU visible to Keras' {backend.backend()} backend "
                    f"(it sees {device})")
    return device


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_a_model_trained_on_the_gpu_scores_the_same_on_the_cpu(gpu, medium_npz, tmp_path,
                                                                 precision):
    import keras

    model = tmp_path / "fast.h5"
    trained = subprocess.run(
        [sys.executable, "train_cnn.py", "--arch", "fast", "--epochs", "1", "--data",
         str(medium_npz), "--output", str(model), "--no-plot", "--precision", precision],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    record = json.loads(model.with_suffix(".json").read_text())
    assert record["device"] == gpu
    assert record["placement"]["precision"] == (
        "float32" if precision == "float32" else "mixed_float16")
    assert record["test"]["accuracy"] > 0.9 and record["test"]["total"] == 10000

    saved = keras.saving.load_model(model, compile=False)
    assert {weight.dtype for weight in saved.weights} == {"float32"}
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}

    on_cpu = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}
    scored = subprocess.run(
        [sys.executable, "evaluate.py", str(model), "--pixels", "0-1", "--data",
         str(medium_npz), "--json", str(tmp_path / "cpu.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=on_cpu)
    assert scored.returncode == 0, scored.stderr[-2000:]
    row = json.loads((tmp_path / "cpu.json").read_text())["models"][0]
    assert row["total"] == 10000
    # The GPU's float32 convolutions may round differently (TF32): a few images at most.
    assert abs(row["accuracy"] - record["test"]["accuracy"]) <= 0.001
