"""Shared fixtures: real MNIST from $MNIST_DATA (which .ci/run sets), loaded once."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the scripts do (mnistkit.runtime)
if os.environ.get("MNIST_DATA"):  # tests run scripts from other folders too
    os.environ["MNIST_DATA"] = os.path.abspath(os.environ["MNIST_DATA"])


@pytest.fixture(scope="session")
def mnist():
    from mnistkit.data import DATA_ENV, load_mnist

    if not os.environ.get(DATA_ENV):
        pytest.skip(f"set ${DATA_ENV} to a folder with the MNIST IDX files to run this test")
    return load_mnist()


@pytest.fixture(scope="session")
def small_mnist(mnist):
    """3,000 training and 1,000 test images: enough to learn, fast enough for a unit test."""
    return mnist.subset(3000, 1000)


def load_script(name: str):
    """Import a top-level script (train_cnn.py, evaluate.py, ...) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_config(script: str, *argv: str):
    """A training script as a module, and the config it would parse from ``argv``."""
    from mnistkit.cli import parse_training_args

    module = load_script(script)
    return module, parse_training_args(module.make_parser(), list(argv))
