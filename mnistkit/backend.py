"""Loading Keras' backend: quietly (TensorFlow's C++ start-up lines are no user's business),
in one line when it cannot load or cannot train. Standard library only until Keras itself is
imported, so that any stage may load it, the files stage's MNIST download included."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

TRAINING_BACKENDS = ("tensorflow", "jax", "torch")  # Keras' others only run models


class BackendError(Exception):
    """The Keras backend the environment asks for cannot be loaded or cannot train."""


# TensorFlow prints these at start-up, before its log level applies; they tell users nothing.
_STARTUP_NOISE = ("All log messages before absl::InitializeLog", "port.cc:", "cudart_stub.cc:",
                  "cuda_platform.cc:", "cuda_executor.cc:", "cuda_dnn.cc:", "cuda_fft.cc:",
                  "cuda_blas.cc:", "computation_placer.cc:", "TF-TRT Warning",
                  "This TensorFlow binary is optimized")


def load_backend_quietly(onednn: bool = True) -> None:
    """Import Keras and its backend and find the devices, without the C++ start-up chatter.

    ``onednn=False`` leaves oneDNN to TensorFlow's own default, as plain Keras code gets it
    (benchmarks/speed.py runs the tutorials' code so).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 (VNNI, BF16) or AMX.
    # Elsewhere (AVX2-only CPUs such as AMD Zen 2 and 3) its own kernels take over: 1.4x
    # (Zen 3) to 2.8x (Zen 2, the deeper CNN) slower for the CNNs, and unable to run
    # channels-first convolutions at all, which older models use.
    if onednn:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with quiet_native_stderr():
        try:
            import keras
        except (ImportError, ValueError) as error:  # Keras loads its backend on import
            raise BackendError(_unloadable(error)) from None

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()


RUNNING_ONLY_BACKENDS = ("numpy", "openvino")


def check_training_backend(loaded: bool = True) -> None:
    """BackendError unless Keras' backend can train: its numpy and openvino backends only
    run models, and fail in ``fit``. Before the backend loads (``loaded=False``), the one
    that KERAS_BACKEND names, if any: it may not even load (numpy's needs SciPy)."""
    name = backend() if loaded else os.environ.get("KERAS_BACKEND", "")
    if name in RUNNING_ONLY_BACKENDS or (loaded and name not in TRAINING_BACKENDS):
        raise BackendError(f"{_named(name)}: Keras cannot train on {name}, only run models; "
                           "set KERAS_BACKEND to tensorflow, jax or torch")


def _unloadable(error: Exception) -> str:
    """Why Keras could not load the backend it was asked for, and what to do, in one line."""
    name = os.environ.get("KERAS_BACKEND") or "tensorflow"
    cause = " ".join(str(error).split())
    if isinstance(error, ImportError):
        missing = (error.name or name).split(".")[0]
        install = {"tensorflow": "requirements.txt", "jax": "requirements-jax.txt",
                   "torch": "requirements-torch.txt"}.get(missing)
        how = f"pip install -r {install}" if install else f"pip install {missing}"
        needs = "" if missing == name else f"Keras' {name} backend needs {missing}, which "
        return (f"{_named(name)}: {needs}{missing} cannot be imported ({cause}); install it "
                f"({how}) or set KERAS_BACKEND to a backend that is installed")
    return (f"{_named(name)}: not a backend Keras has ({cause}); set KERAS_BACKEND to "
            "tensorflow, jax or torch, or unset it for tensorflow")


def _named(name: str) -> str:
    """Where the backend's name came from: the variable, else Keras' own config file."""
    if os.environ.get("KERAS_BACKEND"):
        return f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}"
    return f"Keras' backend {name} (in ~/.keras/keras.json)"


@contextlib.contextmanager
def quiet_native_stderr():
    """Capture the C-level stderr meanwhile; print the lines that are not known noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not any(noise in line for noise in _STARTUP_NOISE):
                    print(line, file=sys.stderr)


def backend() -> str:
    import keras

    return keras.backend.backend()
