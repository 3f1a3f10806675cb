"""Models scored side by side, from the rows and test-set probabilities that scoring gave:
their ranking, the paired test of every two, the row of their average, and each model's
results broken down (confusion matrix, reliability) for ``evaluate.py --report``. The report
only draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistkit.files.data import NUM_CLASSES
from mnistkit.score.evaluation import Row, score
from mnistkit.score.statistics import Comparison, compare_all, reliability


def comparisons(rows: list[Row], labels: np.ndarray) -> list[Comparison]:
    """The exact McNemar test of every pair of evaluated rows, best first."""
    return compare_all({row.path: row.predicted for row in rows if row.error is None},
                       labels)


def ranked(rows: list[Row]) -> list[Row]:
    """Best accuracy first, the rows without a score last."""
    return sorted(rows, key=lambda row: (row.error is not None, -(row.accuracy or 0)))


def with_ensemble(rows: list[Row], probabilities: dict[str, np.ndarray],
                  labels: np.ndarray) -> list[Row]:
    """The rows and, ranked among them, the row of their average (:func:`ensemble_row`)."""
    return ranked([ensemble_row(rows, probabilities, labels), *rows])


def ensemble_row(rows: list[Row], probabilities: dict[str, np.ndarray],
                 labels: np.ndarray) -> Row:
    """The row of the average of the evaluated models' probabilities (which it adds to
    ``probabilities`` under the row's name)."""
    members = [row for row in rows if row.error is None]
    name = f"ensemble of {len(members)}"
    probabilities[name] = np.mean([probabilities[row.path] for row in members], axis=0)
    result = score(probabilities[name], labels)
    row = Row(path=name, params=sum(row.params for row in members),
              seconds=sum(row.seconds for row in members), input_scale="each its own",
              training="mean probability of " + ", ".join(row.name for row in members))
    row.add_scores(result, probabilities[name], labels)
    if all(member.bytes is not None for member in members):
        row.bytes = sum(member.bytes for member in members)
    return row


def confusion(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts of (true digit, predicted digit) pairs, as a 10x10 integer matrix."""
    predicted = probabilities.argmax(axis=1)
    return np.bincount(labels.astype(int) * NUM_CLASSES + predicted,
                       minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)


@dataclass
class Breakdown:
    """One model's test-set results beyond its row, for the report to draw."""

    confusion: np.ndarray  # 10x10 counts of (true digit, predicted digit)
    # Per confidence bin (statistics.reliability): images, mean confidence, accuracy
    reliability: tuple[np.ndarray, np.ndarray, np.ndarray]


def breakdowns(rows: list[Row], probabilities: dict[str, np.ndarray],
               labels: np.ndarray) -> dict[str, Breakdown]:
    """A :class:`Breakdown` for each evaluated row whose probabilities were kept, by path."""
    return {row.path: Breakdown(confusion(probabilities[row.path], labels),
                                reliability(probabilities[row.path], labels))
            for row in rows if row.error is None and row.path in probabilities}
