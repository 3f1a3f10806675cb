"""Score a loaded MNIST classifier on the whole test set.

Training and ``evaluate.py`` both score through :func:`evaluate_model`, so the accuracy a
script prints is the one ``evaluate.py`` prints for the saved file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mnistkit.data import NUM_CLASSES
from mnistkit.inputs import prepare_images
from mnistkit.loading import io_shapes

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
    input_shape, _ = io_shapes(model)
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


