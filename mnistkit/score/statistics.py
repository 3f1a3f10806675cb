"""How sure the scores are: intervals, paired tests between models, calibration.

Pure NumPy and the standard library, so the figures can be checked by hand:

- :func:`wilson_interval`: the 95% Wilson score interval of an accuracy (k right of n).
- :func:`mcnemar`: the exact McNemar test of two models on the same images, a two-sided
  binomial test on the images only one of them gets right.
- :func:`expected_calibration_error` and :func:`reliability`: how far the confidence a
  model states is from the accuracy it has (15 equal-width confidence bins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval
SIGNIFICANCE = 0.05  # a difference with a smaller p-value is called real
CALIBRATION_BINS = 15  # equal-width confidence bins, as Guo et al. (2017) count ECE


def wilson_interval(right: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``right / total`` (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or
    ``total`` right, which matters near 100% accuracy."""
    if total <= 0:
        return 0.0, 1.0
    share = right / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_two_sided(smaller: int, total: int) -> float:
    """P-value of an exact two-sided binomial test of ``smaller`` successes in ``total``
    fair coin tosses. Exact integer sums: no rounding however many images differ."""
    if total == 0:
        return 1.0
    smaller = min(smaller, total - smaller)
    tail = sum(math.comb(total, k) for k in range(smaller + 1))
    return min(1.0, tail / 2 ** (total - 1))  # both tails: twice the smaller one


@dataclass
class Comparison:
    """Two models on the same images: how many only each gets right, and the p-value."""

    a: str
    b: str
    only_a: int
    only_b: int
    p_value: float

    @property
    def real(self) -> bool:
        return self.p_value < SIGNIFICANCE

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "only_a": self.only_a, "only_b": self.only_b,
                "p_value": self.p_value, "real": self.real, "verdict": self.verdict()}

    def verdict(self, a: str | None = None, b: str | None = None) -> str:
        """In words, e.g. 'A beats B: 31 vs 12 images, p = 0.005' (file names by default)."""
        a, b = a or Path(self.a).name, b or Path(self.b).name
        shown = f"p = {self.p_value:.2g}" if self.p_value >= 1e-4 else "p < 0.0001"
        if not self.real:
            return (f"{a} and {b}: no real difference ({self.only_a} vs {self.only_b} "
                    f"images, {shown})")
        if self.only_a >= self.only_b:
            return f"{a} beats {b}: {self.only_a} vs {self.only_b} images, {shown}"
        return f"{b} beats {a}: {self.only_b} vs {self.only_a} images, {shown}"


def mcnemar(a: str, b: str, correct_a: np.ndarray, correct_b: np.ndarray) -> Comparison:
    """The exact McNemar test: only the images the two models disagree on say which is
    better; with no difference each such image is a fair coin toss."""
    only_a = int(np.count_nonzero(correct_a & ~correct_b))
    only_b = int(np.count_nonzero(correct_b & ~correct_a))
    return Comparison(a, b, only_a, only_b, binomial_two_sided(min(only_a, only_b),
                                                               only_a + only_b))


def compare_all(predictions: dict[str, np.ndarray], labels: np.ndarray) -> list[Comparison]:
    """Every pair of models (named, with their predicted digits) scored on ``labels``,
    in the order given: the first model against each later one, then the second..."""
    correct = {name: np.asarray(predicted) == labels for name, predicted in predictions.items()
               if predicted is not None and len(predicted) == len(labels)}
    names = list(correct)
    return [mcnemar(a, b, correct[a], correct[b])
            for i, a in enumerate(names) for b in names[i + 1:]]


def reliability(probabilities: np.ndarray, labels: np.ndarray,
                bins: int = CALIBRATION_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin ((i/bins, (i+1)/bins]): the count of images, their mean
    confidence and their accuracy (NaN where a bin is empty)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # Bins closed on the right, as usually drawn: a confidence of exactly 1 is in the last.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = CALIBRATION_BINS) -> float:
    """ECE: the gap between accuracy and mean confidence in each bin, weighted by the
    bin's share of the images. 0 is perfectly calibrated."""
    counts, mean_confidence, accuracy = reliability(probabilities, labels, bins)
    filled = counts > 0
    gaps = np.abs(accuracy[filled] - mean_confidence[filled])
    return float(np.sum(counts[filled] * gaps) / max(1, counts.sum()))
