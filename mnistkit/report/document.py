"""``evaluate.py --report DIR``: pictures per model, one comparison chart, report.md and JSON."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import numpy as np

from mnistkit.files.data import NUM_CLASSES, Mnist
from mnistkit.files.saving import write_json
from mnistkit.report import plots
from mnistkit.report.table import Row, markdown_table


def confusion(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts of (true digit, predicted digit) pairs, as a 10x10 integer matrix."""
    predicted = probabilities.argmax(axis=1)
    return np.bincount(labels.astype(int) * NUM_CLASSES + predicted,
                       minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)


def write_report(rows: list[Row], probabilities: dict[str, np.ndarray], mnist: Mnist,
                 folder: Path, device: str) -> Path:
    """Write the report's pictures, ``report.md`` and ``report.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    evaluated = [row for row in rows if row.error is None]
    stems = _unique_stems(evaluated)
    sections, models = [], []
    for row in rows:
        entry = row.as_dict()
        if row.error is None:
            stem, probs = stems[row.path], probabilities[row.path]
            matrix = confusion(probs, mnist.test_labels)
            plots.confusion_matrix(matrix, f"{row.name}: confusion matrix",
                                   folder / f"{stem}_confusion.png")
            plots.mistakes_gallery(mnist.test_images, mnist.test_labels, probs, row.name,
                                   folder / f"{stem}_mistakes.png")
            entry.update(confusion_matrix=matrix.tolist(),
                         pictures={"confusion": f"{stem}_confusion.png",
                                   "mistakes": f"{stem}_mistakes.png"})
            fed = f", fed pixels {row.input_scale}" if row.input_scale else ""
            warned = f"\n\n**Warning:** {row.warning}" if row.warning else ""
            sections.append(f"### {row.name}\n\n{row.accuracy:.4f} test accuracy, "
                            f"{row.errors}/{row.total} wrong{fed}.{warned}\n\n"
                            f"![confusion matrix of {row.name}]({stem}_confusion.png)\n"
                            f"![most confident mistakes of {row.name}]({stem}_mistakes.png)\n")
        models.append(entry)
    singles = [row for row in evaluated if row.path in probabilities and row.params]
    plots.accuracy_against_parameters([row.name for row in singles],
                                      [row.params for row in singles],
                                      [row.accuracy for row in singles], folder / "comparison.png")

    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write_json({"created": created, "device": device, "data": mnist.source,
                "test_images": len(mnist.test_labels), "models": models},
               folder / "report.json")
    (folder / "report.md").write_text("\n".join([
        "# MNIST model report", "",
        f"{len(evaluated)} models on all {len(mnist.test_labels):,} test images ({device}, "
        f"{created}). Best first; numbers also in `report.json`.", "",
        markdown_table(rows), "",
        "## Accuracy per digit", "", _per_class_table(evaluated), "",
        "## Accuracy against size", "", "![accuracy against parameters](comparison.png)", "",
        "## Each model", "", *sections]))
    return folder / "report.md"


def _per_class_table(rows: list[Row]) -> str:
    lines = ["| model | " + " | ".join(str(d) for d in range(NUM_CLASSES)) + " |",
             "| --- |" + " ---: |" * NUM_CLASSES]
    for row in rows:
        lines.append(f"| {row.name} | "
                     + " | ".join(f"{a:.4f}" for a in row.per_class_accuracy) + " |")
    return "\n".join(lines)


def _unique_stems(rows: list[Row]) -> dict[str, str]:
    stems: dict[str, str] = {}
    for row in rows:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(row.name).stem) or "model"
        candidate, number = stem, 2
        while candidate in stems.values():
            candidate, number = f"{stem}_{number}", number + 1
        stems[row.path] = candidate
    return stems
