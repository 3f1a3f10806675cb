"""Score a loaded MNIST classifier on the whole test set, at the pixel scale it expects.

Training and ``evaluate.py`` both score through :func:`evaluate_model`, so the accuracy a
script prints is the one ``evaluate.py`` prints for the saved file. :func:`score_file` is the
whole per-file stage (load, choose the pixel scale, score, warn) and never raises.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mnistkit.files.data import NUM_CLASSES, Mnist
from mnistkit.prepare.inputs import prepare_images
from mnistkit.prepare.pixels import resolve_scale
from mnistkit.read.loading import ModelError, io_shapes, load_model_file, reason

CHANCE_WARNING = 0.5  # below this an MNIST classifier is not being fed what it learned

EVAL_BATCH = 1000  # large batches: evaluation has no gradients, so memory is no concern
_EPSILON = 1e-7  # Keras' clipping for cross-entropy, so losses match model.evaluate


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


def evaluate_model(model, images: np.ndarray, labels: np.ndarray,
                   keep_probabilities: bool = False, scale: str = "0-1") -> TestResult:
    """Accuracy, cross-entropy and errors of ``model`` on every image given."""
    start = time.perf_counter()
    probabilities = predict_probabilities(model, images, scale)
    result = score(probabilities, labels, seconds=time.perf_counter() - start)
    if keep_probabilities:
        result.probabilities = probabilities
    return result


def predict_probabilities(model, images: np.ndarray, scale: str = "0-1") -> np.ndarray:
    """Class probabilities, shape (n, 10), for uint8 images of shape (n, 28, 28)."""
    input_shape, _ = io_shapes(model)
    inputs = prepare_images(images, input_shape, scale)
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


def classifier(model):
    """``model`` as the pixel-scale choice calls it: uint8 images and a scale in,
    probabilities out (``mnistkit.prepare.pixels.Classify``)."""
    return lambda images, scale: predict_probabilities(model, images, scale)


@dataclass
class Row:
    """One model file's result, or the reason it has none."""

    path: str
    params: int | None = None
    accuracy: float | None = None
    errors: int | None = None
    total: int | None = None
    loss: float | None = None
    seconds: float | None = None
    per_class_accuracy: list[float] | None = None
    training: str = ""
    error: str | None = None
    input_scale: str | None = None
    scale_chosen_by: str | None = None  # "auto" (then scale_accuracies says why) or "--pixels"
    scale_accuracies: dict[str, float] | None = None
    warning: str | None = None
    record: dict | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def as_dict(self) -> dict:
        fields = {key: value for key, value in asdict(self).items() if key != "record"}
        return {"file": self.path, **fields}


def score_file(path: str | Path, mnist: Mnist, pixels: str = "auto", trust_code: bool = False,
               keep_probabilities: bool = False) -> tuple[Row, np.ndarray | None]:
    """Load one file, choose its pixel scale, score it on the whole test set and warn when
    the score is near chance. A bad file gets ``row.error``; this never raises for one.

    Returns the row and, with ``keep_probabilities``, the test-set probabilities.
    """
    row = Row(path=str(path))
    try:
        model = load_model_file(path, trust_code=trust_code)
        row.input_scale, row.scale_accuracies = resolve_scale(classifier(model), pixels, mnist)
        row.scale_chosen_by = "auto" if pixels == "auto" else "--pixels"
        result = evaluate_model(model, mnist.test_images, mnist.test_labels,
                                keep_probabilities=keep_probabilities, scale=row.input_scale)
    except ModelError as error:
        row.error = str(error)
        return row, None
    except Exception as error:  # a model that loads but cannot run (bad weights, ops)
        row.error = f"failed to run: {reason(error)}"
        return row, None
    if not np.isfinite(result.loss):  # NaN or infinite outputs: the "score" is noise
        row.error = "its outputs are not finite numbers (NaN or infinite weights?)"
        return row, None
    row.params = model.count_params()
    row.accuracy, row.errors, row.total = result.accuracy, result.errors, result.total
    row.loss, row.seconds = result.loss, result.seconds
    row.per_class_accuracy = result.per_class_accuracy
    if row.accuracy < CHANCE_WARNING:
        tried = ("no pixel scale does better on training images" if pixels == "auto"
                 else f"pixels {row.input_scale}")
        row.warning = (f"near chance ({row.accuracy:.1%}; {tried}): trained on other data, "
                       "or fed the wrong input")
    return row, result.probabilities

