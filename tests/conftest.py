"""Shared fixtures: real MNIST, loaded once, found the way the scripts find it.

That is ``$MNIST_DATA`` when set (``.ci/run`` sets it), else Keras' download, cached in
``~/.keras/datasets/``. With neither, the tests that need MNIST fail with the loader's message.
"""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the scripts do (mnistkit.runtime)
if os.environ.get("MNIST_DATA"):  # tests run scripts from other folders too
    os.environ["MNIST_DATA"] = os.path.abspath(os.environ["MNIST_DATA"])


# What Linux alone has (/proc, /dev/full) or only POSIX systems (FIFOs, SIGHUP, preexec_fn):
# the tests of it are skipped on macOS and Windows, saying so (README, "On Windows and macOS").
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux's own facilities (/proc, /dev/full)")
posix_only = pytest.mark.skipif(sys.platform == "win32",
                                reason="POSIX facilities Windows lacks (FIFOs, SIGHUP, preexec_fn)")


def needs(package: str):
    """Skip a test of another Keras backend when its package is not installed: the quick
    lane runs with requirements.txt and the test tools alone; requirements-dev.txt (the full
    lane) installs JAX and PyTorch."""
    requirements = {"jax": "requirements-jax.txt", "torch": "requirements-torch.txt"}[package]
    return pytest.mark.skipif(importlib.util.find_spec(package) is None,
                              reason=f"{package} is not installed (pip install -r "
                                     f"{requirements}; requirements-dev.txt installs it)")


def save_npz(mnist, path: Path) -> Path:
    """``mnist`` (a ``Mnist``, often a subset) as the .npz file ``--data`` takes."""
    np.savez(path, x_train=mnist.train_images, y_train=mnist.train_labels,
             x_test=mnist.test_images, y_test=mnist.test_labels)
    return path


@pytest.fixture(scope="session")
def mnist():
    from mnistkit.files.data import DataError, load_mnist

    try:
        return load_mnist()
    except DataError as error:
        pytest.fail(f"MNIST is needed for this test: {error}", pytrace=False)


@pytest.fixture(scope="session")
def small_mnist(mnist):
    """3,000 training and 1,000 test images: enough to learn, fast enough for a unit test."""
    return mnist.subset(3000, 1000)


@pytest.fixture(scope="session")
def medium_npz(tmp_path_factory, mnist):
    """12,000 real training images and the full test set: epochs of about half a second."""
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    save_npz(mnist.subset(12000, len(mnist.test_labels)), path)
    return path


def ctrl_c_as_in_a_terminal() -> None:
    """``preexec_fn`` for a process a test interrupts or hangs up on (SIGINT and SIGHUP as a
    terminal delivers them, whatever the shell that runs the suite ignores)."""
    from testkit.processes import signals_as_in_a_terminal

    signals_as_in_a_terminal()


def wait_for_epoch(state_path, epoch, process, timeout=120):
    """Poll the checkpoint until it records ``epoch`` finished epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if json.loads(state_path.read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"epoch {epoch} never finished")


def load_script(name: str):
    """Import a top-level script (train_cnn.py, evaluate.py, ...) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_config(script: str, *argv: str):
    """A training script as a module, and the config it would parse from ``argv``."""
    from mnistkit.train.flags import parse_training_args

    module = load_script(script)
    return module, parse_training_args(module.make_parser(), list(argv))


@pytest.fixture
def simulated(monkeypatch):
    """Take a system's branch of mnistkit.system in this process (tests/test_platform*.py);
    each test removes that system's missing facts itself (monkeypatch)."""
    from mnistkit import system

    def take(name: str) -> None:
        monkeypatch.setattr(system, "SYSTEM", name)
    return take
