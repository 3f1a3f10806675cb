"""What a run is on: seeding, versions, backend and device, for the console and the record."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import warnings

from mnistkit import system
from mnistkit.files import scratch

TRAINING_BACKENDS = ("tensorflow", "jax", "torch")  # Keras' others only run models


class BackendError(Exception):
    """The Keras backend the environment asks for cannot be loaded or cannot train."""


# TensorFlow prints these at start-up, before its log level applies; they tell users nothing.
_STARTUP_NOISE = ("All log messages before absl::InitializeLog", "port.cc:", "cudart_stub.cc:",
                  "cuda_platform.cc:", "cuda_executor.cc:", "cuda_dnn.cc:", "cuda_fft.cc:",
                  "cuda_blas.cc:", "computation_placer.cc:", "TF-TRT Warning",
                  "This TensorFlow binary is optimized")


def escape_unprintable_output() -> None:
    """Print what the terminal's encoding cannot show (file names that are not valid UTF-8)
    escaped, instead of failing with UnicodeEncodeError after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def exit_now(status: int) -> None:
    """End the process with ``status`` once the output is flushed, skipping the interpreter's
    teardown: after TensorFlow has run, tearing it down takes 0.8 s (2-core CPU) and does
    nothing a user can see. Everything a run writes is closed before its script returns."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    scratch.remove_scratch(_scratch)  # os._exit skips every other clean-up
    os._exit(status)


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
    with _quiet_native_stderr():
        try:
            import keras
        except (ImportError, ValueError) as error:  # Keras loads its backend on import
            raise BackendError(_unloadable(error)) from None

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()


_scratch = None


def use_own_scratch() -> None:
    """Give a script's process a temporary folder of its own, which :func:`exit_now` removes:
    TensorFlow's autograph leaves a generated module there per traced function."""
    global _scratch
    if _scratch is None:
        _scratch = scratch.make_scratch()
        scratch.use_scratch(_scratch)


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


def tolerate_library_warnings() -> None:
    """Drop ``error`` warning filters (PYTHONWARNINGS=error, python -W error): they turn the
    backends' own deprecation warnings into exceptions minutes into a run, on lines no user
    can change. Warnings are then shown, or not, as Python's defaults say."""
    kept = [entry for entry in warnings.filters if entry[0] != "error"]
    if len(kept) != len(warnings.filters):
        warnings.filters[:] = kept
        # Python's fallback for a warning no filter matches, added through the public call
        # that also tells the warnings machinery its list changed
        warnings.simplefilter("default", append=True)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask for deterministic ops, so a run repeats.

    On TensorFlow op determinism cost nothing measurable here (deeper CNN, 2-core CPU).
    """
    import keras

    # On every backend Keras also seeds TensorFlow where it is installed, importing it:
    # on JAX and torch that import's start-up chatter comes from here.
    with _quiet_native_stderr():
        keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def _quiet_native_stderr():
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


def versions() -> dict[str, str]:
    """Versions of Python, NumPy, Keras and the backend's framework."""
    import keras
    import numpy

    found = {"python": platform.python_version(), "numpy": numpy.__version__,
             "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch"):
        if module in sys.modules:
            found[module] = sys.modules[module].__version__
    return found


def backend() -> str:
    import keras

    return keras.backend.backend()


def device() -> str:
    """The device the backend computes on, e.g. 'GPU: NVIDIA H100' or 'CPU: AMD EPYC (2 cores)'."""
    import keras

    name = keras.backend.backend()
    gpus: list[str] = []
    if name == "tensorflow":
        import tensorflow as tf

        gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                for gpu in tf.config.list_physical_devices("GPU")]
    elif name == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    elif name == "torch":
        import torch

        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        elif (torch.backends.mps.is_available()  # Apple silicon: Keras computes there itself
              and os.environ.get("KERAS_TORCH_DEVICE", "mps") == "mps"):
            gpus = ["Apple silicon (Metal)"]
    if gpus:
        return f"GPU: {gpus[0]}" + (f" (x{len(gpus)})" if len(gpus) > 1 else "")
    return f"CPU: {_cpu_name()} ({os.cpu_count()} cores)"


def _cpu_name() -> str:
    return system.cpu_name()


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has bfloat16 arithmetic instructions (x86's AVX512-BF16 or AMX), on
    which oneDNN's bfloat16 kernels run natively rather than emulated (``cpuinfo``: where
    Linux lists the CPU's flags; each system's branch is in ``mnistkit.system``)."""
    return system.cpu_has_bfloat16(cpuinfo)
