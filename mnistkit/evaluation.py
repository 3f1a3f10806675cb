"""Load any Keras MNIST classifier safely and score it on the whole test set.

Training and ``evaluate.py`` both score through :func:`evaluate_model`, so the accuracy a
script prints is the one ``evaluate.py`` prints for the saved file.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.data import NUM_CLASSES, layout_for, prepare_images

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
EVAL_BATCH = 1000  # large batches: evaluation has no gradients, so memory is no concern
_EPSILON = 1e-7  # Keras' clipping for cross-entropy, so losses match model.evaluate


class ModelError(Exception):
    """A file that is not a usable MNIST classifier; the message says why."""


@dataclass
class TestResult:
    accuracy: float
    loss: float
    errors: int
    total: int
    seconds: float
    per_class_accuracy: list[float]
    probabilities: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "errors": self.errors,
                "total": self.total, "seconds": self.seconds,
                "per_class_accuracy": self.per_class_accuracy}


def load_model_file(path: str | Path, trust_code: bool = False):
    """Load a ``.h5`` (or ``.keras``) model without running code stored in it.

    Keras' safe mode refuses ``Lambda`` layers and other pickled Python functions;
    ``trust_code=True`` lifts that for files the user trusts. Raises :class:`ModelError`.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError("no such file")
    with open(path, "rb") as file:
        signature = file.read(8)
    if signature == HDF5_SIGNATURE:
        if path.suffix not in (".h5", ".hdf5"):
            raise ModelError("an HDF5 file must be named .h5 or .hdf5 for Keras to load it")
    elif signature.startswith(ZIP_SIGNATURE) and path.suffix == ".keras":
        pass
    else:
        raise ModelError("not a Keras model file (no HDF5 signature)")
    try:
        with warnings.catch_warnings():  # Keras 2 files draw advice meant for their authors
            warnings.simplefilter("ignore", UserWarning)
            model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as error:  # Keras raises many types; each becomes one readable reason
        raise ModelError(_reason(error)) from None
    check_fits_mnist(model)
    return model


def check_fits_mnist(model) -> None:
    """Raise :class:`ModelError` unless the model takes 28x28 images and gives 10 classes."""
    input_shape, output_shape = _io_shapes(model)
    try:
        layout_for(input_shape)
    except ValueError as error:
        raise ModelError(str(error)) from None
    if None in output_shape or int(np.prod(output_shape)) != NUM_CLASSES:
        raise ModelError(f"output shape {tuple(output_shape)} is not 10 classes")


def evaluate_model(model, images: np.ndarray, labels: np.ndarray,
                   keep_probabilities: bool = False) -> TestResult:
    """Accuracy, cross-entropy and errors of ``model`` on every image given."""
    start = time.perf_counter()
    probabilities = predict_probabilities(model, images)
    result = score(probabilities, labels, seconds=time.perf_counter() - start)
    if keep_probabilities:
        result.probabilities = probabilities
    return result


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n, 10), for uint8 images of shape (n, 28, 28)."""
    input_shape, _ = _io_shapes(model)
    inputs = prepare_images(images, input_shape)
    outputs = np.asarray(model.predict(inputs, batch_size=EVAL_BATCH, verbose=0), np.float64)
    return as_probabilities(outputs.reshape(len(images), NUM_CLASSES))


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Outputs as probabilities: softmax outputs pass through, logits go through softmax."""
    if outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def score(probabilities: np.ndarray, labels: np.ndarray, seconds: float = 0.0) -> TestResult:
    predicted = probabilities.argmax(axis=1)
    correct = predicted == labels
    picked = np.clip(probabilities[np.arange(len(labels)), labels], _EPSILON, 1 - _EPSILON)
    per_class = [float(correct[labels == digit].mean()) if np.any(labels == digit) else float("nan")
                 for digit in range(NUM_CLASSES)]
    return TestResult(accuracy=float(correct.mean()), loss=float(-np.log(picked).mean()),
                      errors=int((~correct).sum()), total=len(labels), seconds=seconds,
                      per_class_accuracy=per_class)


def _io_shapes(model) -> tuple[tuple, tuple]:
    try:
        input_shape, output_shape = model.input_shape, model.output_shape
    except (AttributeError, ValueError):
        raise ModelError("the model declares no input shape (an unbuilt model)") from None
    if isinstance(input_shape, list) or isinstance(output_shape, list):
        raise ModelError("the model has several inputs or outputs; expected one of each")
    return tuple(input_shape[1:]), tuple(output_shape[1:])


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if "lambda" in text.lower() or "safe_mode" in text:
        return ("holds stored Python code (a Lambda layer); refused so that it cannot run; "
                "use --trust-code only for files you trust")
    sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if sizes:
        return f"truncated HDF5 file ({sizes[1]} bytes of the {sizes[2]} it should have)"
    if "truncated" in text or "file signature not found" in text or "Unable to" in text:
        return f"damaged HDF5 file ({text[:120]})"
    if "No model config" in text or "model_config" in text:
        return "holds no model architecture (a weights-only file?)"
    return f"could not be loaded: {text[:160]}"
