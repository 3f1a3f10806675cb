"""How much arithmetic a model's training takes, and how much this CPU can do: the two numbers
behind "fraction of the arithmetic limit" in the benchmarks.

Only multiply-adds of Conv2D and Dense layers are counted (2 FLOPs each); batch
normalisation, activations and pooling add memory traffic rather than arithmetic. A training
step costs about three forward passes: the forward pass, the gradient with respect to the
layer's input and the gradient with respect to its weights.

    python benchmarks/arithmetic.py      # this CPU's float32 and bfloat16 matrix-multiply peaks
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # mnistkit, the scripts

TRAINING_PASSES = 3  # forward, gradient of the input, gradient of the weights


def forward_flops(model) -> int:
    """FLOPs of one image's forward pass through the Conv2D and Dense layers of ``model``."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense"):
            kernel = layer.kernel.shape  # (kh, kw, in, out) or (in, out)
            # every output position of every filter is one dot product with the kernel
            positions = math.prod(d for d in layer.output.shape[1:-1] if d)
            total += 2 * math.prod(kernel) * positions
        elif hasattr(layer, "layers"):
            total += forward_flops(layer)
    return total


def training_flops_per_image(model) -> int:
    return TRAINING_PASSES * forward_flops(model)


def script_flops_per_image(command: list[str]) -> int:
    """Training FLOPs per image of the model a training script builds for ``command``
    (e.g. ``["train_cnn.py", "--arch", "fast"]``), from the script's own definition."""
    import importlib

    from mnistkit.train.flags import parse_training_args

    module = importlib.import_module(Path(command[0]).stem)
    config = parse_training_args(module.make_parser(), command[1:])
    return training_flops_per_image(module.build_model(config))


def peak_gflops(size: int = 2048, repeats: int = 8, dtype: str = "float32") -> float:
    """GFLOP/s of a large matrix multiply in ``dtype`` on the backend: the best this CPU does.

    The best of several timed products, so that a moment of other load does not count.
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (keras.ops.cast(rng.standard_normal((size, size), np.float32), dtype)
            for _ in range(2))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # warm-up: threads, kernels
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


PEAK_DTYPES = ("float32", "bfloat16")


def peaks_gflops() -> dict[str, float]:
    """This CPU's matrix-multiply peak for each precision a run computes in."""
    return {dtype: peak_gflops(dtype=dtype) for dtype in PEAK_DTYPES}


def peak_dtype(precision: str) -> str:
    """The peak a run's share is of: its record's precision ("mixed_bfloat16", "float32")."""
    return "bfloat16" if "bfloat16" in precision else "float32"


def main() -> int:
    from mnistkit import backend, runtime

    backend.load_backend_quietly()
    print(f"{runtime.device()}: float32 matrix multiply {peak_gflops():.1f} GFLOP/s, "
          f"bfloat16 {peak_gflops(dtype='bfloat16'):.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
