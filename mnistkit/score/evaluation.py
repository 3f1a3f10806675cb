"""Score a loaded MNIST classifier on the whole test set, at the pixel scale it expects.

Training and ``evaluate.py`` both score through :func:`evaluate_model`, so the accuracy a
script prints is the one ``evaluate.py`` prints for the saved file. :func:`score_file` is the
whole per-file stage (load, choose the pixel scale, score, warn) and never raises.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

import numpy as np

from mnistkit.files import bounded
from mnistkit.files.data import NUM_CLASSES, Mnist
from mnistkit.prepare.inputs import prepare_images
from mnistkit.prepare.pixels import resolve_scale
from mnistkit.read.loading import ModelError, io_shapes, load_model, reason
from mnistkit.score.statistics import expected_calibration_error, wilson_interval

CHANCE_WARNING = 0.5  # below this an MNIST classifier is not being fed what it learned

EVAL_BATCH = 1000  # large batches: evaluation has no gradients, so memory is no concern
_EPSILON = 1e-7  # Keras' clipping for cross-entropy, so losses match model.evaluate
LATENCY_CALLS = 50  # single-image calls timed; their median is the latency
WARM_UP_CALLS = 5  # untimed first calls: tracing and first allocations are not latency
THROUGHPUT_BATCH = 1000
QUANTISED_SUM = 0.03  # how far a quantised softmax's outputs may sum from 1: 10 steps of 1/512


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
    """Outputs as probabilities: softmax outputs pass through, logits go through softmax.
    A quantised softmax (an int8 model's, in steps of 1/256) can miss a sum of 1 by up to
    10/512: such outputs are divided by their sum, not taken for logits."""
    sums = outputs.sum(axis=1)
    if outputs.min() >= 0 and np.allclose(sums, 1, atol=1e-3):
        return outputs
    if outputs.min() >= 0 and outputs.max() <= 1 and np.allclose(sums, 1, atol=QUANTISED_SUM):
        return outputs / sums[:, None]
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
    format: str | None = None  # told by the content (mnistkit.read.sniffing.FORMATS)
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
    interval: list[float] | None = None  # 95% Wilson interval of the accuracy
    ece: float | None = None  # expected calibration error, 15 equal-width bins
    nll: float | None = None  # mean negative log-likelihood of the true digit (= loss)
    bytes: int | None = None  # the model file's size on disk
    latency: dict[str, float] | None = None  # ms_per_image_batch1, images_per_second_batch1000
    corruption_accuracy: dict[str, float] | None = None  # --corruptions: name: accuracy
    mean_corruption_accuracy: float | None = None
    record: dict | None = field(default=None, repr=False)
    # Each test image's predicted digit (uint8), for the paired tests between models; kept
    # out of the JSON, where 10,000 numbers per model would drown the rest.
    predicted: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def as_dict(self) -> dict:
        fields = {key: value for key, value in asdict(self).items()
                  if key not in ("record", "predicted")}
        return {"file": self.path, **fields}

    def add_scores(self, result: TestResult, probabilities: np.ndarray,
                   labels: np.ndarray) -> None:
        """The scores of ``result`` and the uncertainty of each, from the probabilities."""
        self.accuracy, self.errors, self.total = result.accuracy, result.errors, result.total
        self.loss = self.nll = result.loss
        self.per_class_accuracy = result.per_class_accuracy
        self.interval = list(wilson_interval(result.total - result.errors, result.total))
        self.ece = expected_calibration_error(probabilities, labels)
        self.predicted = probabilities.argmax(axis=1).astype(np.uint8)


def score_file(path: str | Path, mnist: Mnist, pixels: str = "auto", trust_code: bool = False,
               keep_probabilities: bool = False, measure_cost: bool = False,
               corruptions: dict[str, np.ndarray] | None = None,
               ) -> tuple[Row, np.ndarray | None]:
    """Load one file, choose its pixel scale, score it on the whole test set and warn when
    the score is near chance. A bad file gets ``row.error``; this never raises for one.
    ``measure_cost`` also times the model (``row.latency``); ``corruptions`` (name: uint8
    test images, labels as the test set's) scores it on each (``row.corruption_accuracy``).

    Returns the row and, with ``keep_probabilities``, the test-set probabilities.
    """
    row = Row(path=str(path))
    try:
        model, row.format = load_model(path, trust_code=trust_code)
        row.input_scale, row.scale_accuracies = resolve_scale(classifier(model), pixels, mnist)
        row.scale_chosen_by = "auto" if pixels == "auto" else "--pixels"
        result = evaluate_model(model, mnist.test_images, mnist.test_labels,
                                keep_probabilities=True, scale=row.input_scale)
        latency = corrupted = None
        if np.isfinite(result.loss):  # the extras only for a model whose scores count
            if measure_cost:
                latency = measure_latency(model, mnist.test_images, row.input_scale)
            if corruptions:
                corrupted = corrupted_accuracies(model, corruptions, mnist.test_labels,
                                                 row.input_scale)
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
    row.add_scores(result, result.probabilities, mnist.test_labels)
    row.seconds, row.latency, row.corruption_accuracy = result.seconds, latency, corrupted
    if corrupted:
        row.mean_corruption_accuracy = float(np.mean(list(corrupted.values())))
    with contextlib.suppress(OSError, ValueError):  # gone meanwhile, or a folder of too much
        row.bytes = size_on_disk(Path(path))
    if row.accuracy < CHANCE_WARNING:
        tried = ("no pixel scale does better on training images" if pixels == "auto"
                 else f"pixels {row.input_scale}")
        row.warning = (f"near chance ({row.accuracy:.1%}; {tried}): trained on other data, "
                       "or fed the wrong input")
    return row, result.probabilities if keep_probabilities else None


def size_on_disk(path: Path) -> int:
    """A file's size; a SavedModel folder's, all the files in it."""
    if not path.is_dir():
        return os.path.getsize(path)
    return sum(inner.stat().st_size for inner in bounded.walk(path, bounded.MAX_FOLDER_ENTRIES)
               if inner.is_file() and not inner.is_symlink())


def measure_latency(model, images: np.ndarray, scale: str) -> dict[str, float]:
    """Milliseconds per image one at a time (the median of LATENCY_CALLS calls), and images
    per second in batches of THROUGHPUT_BATCH (the best of three), after warm-up calls.
    ``predict_on_batch`` runs the compiled call alone, as a server answering one digit does."""
    input_shape = io_shapes(model)[0]
    one = prepare_images(images[:1], input_shape, scale)
    batch = prepare_images(images[:THROUGHPUT_BATCH], input_shape, scale)
    for inputs in (one, batch):  # each shape is traced on its first call
        for _ in range(WARM_UP_CALLS if inputs is one else 1):
            model.predict_on_batch(inputs)
    single = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        model.predict_on_batch(one)
        single.append(time.perf_counter() - started)
    batched = []
    for _ in range(3):
        started = time.perf_counter()
        model.predict_on_batch(batch)
        batched.append(time.perf_counter() - started)
    return {"ms_per_image_batch1": median(single) * 1000,
            "images_per_second_batch1000": len(batch) / min(batched)}


def corrupted_accuracies(model, corruptions: dict[str, np.ndarray], labels: np.ndarray,
                         scale: str) -> dict[str, float]:
    """Accuracy on each corrupted copy of the test set (the labels stay the same)."""
    return {name: float(np.mean(predict_probabilities(model, np.asarray(images), scale)
                                .argmax(axis=1) == labels))
            for name, images in corruptions.items()}
