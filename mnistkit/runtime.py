"""What a run is on: seeding, versions, backend and device, for the console and the record."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings

from mnistkit import system
from mnistkit.backend import quiet_native_stderr
from mnistkit.files import scratch


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


_scratch = None


def use_own_scratch() -> None:
    """Give a script's process a temporary folder of its own, which :func:`exit_now` removes:
    TensorFlow's autograph leaves a generated module there per traced function."""
    global _scratch
    if _scratch is None:
        _scratch = scratch.make_scratch()
        scratch.use_scratch(_scratch)


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
    with quiet_native_stderr():
        keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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
