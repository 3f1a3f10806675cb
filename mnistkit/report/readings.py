"""predict.py's answers: for each picture, its JSON, its line of text, and with --show its
picture (each digit as the model saw it, above its probabilities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def describe(name: str, probabilities: np.ndarray, label: int | None) -> dict:
    """A picture's answer, by its first digit: the digit, its probabilities, the top 3."""
    top = probabilities.argsort()[::-1][:3]
    result = {"file": name, "predicted": int(top[0]),
              "probabilities": [round(float(p), 6) for p in probabilities],
              "top3": [[int(d), round(float(probabilities[d]), 6)] for d in top]}
    if label is not None:
        result["true_label"] = label
    return result


def read_number(probabilities: np.ndarray) -> dict:
    """Each digit of a picture (left to right): ``reading`` is their answers as a string."""
    digits = [{"predicted": int(row.argmax()),
               "probabilities": [round(float(p), 6) for p in row]} for row in probabilities]
    return {"reading": "".join(str(digit["predicted"]) for digit in digits), "digits": digits}


def as_text(result: dict) -> str:
    """One line: ``three.png: 3   [3: 0.998, ...]``, or the number read."""
    if len(result.get("digits", ())) > 1:  # a number: "photo.jpg: 1984   [1: 0.998, ...]"
        tops = ", ".join(f"{d['predicted']}: {max(d['probabilities']):.3f}"
                         for d in result["digits"])
        return f"{result['file']}: {result['reading']}   [{tops}]"
    top = ", ".join(f"{digit}: {p:.3f}" for digit, p in result["top3"])
    truth = f" (true label {result['true_label']})" if "true_label" in result else ""
    return f"{result['file']}: {result['predicted']}{truth}   [{top}]"


def show(name: str, digits: np.ndarray, probabilities: np.ndarray, prefix: str) -> str:
    """--show: ``PREFIX<name>.png``, each digit of the picture as the model saw it (uint8,
    (n, 28, 28)) above its probabilities (n, 10); the path written."""
    from mnistkit.files.saving import publish
    from mnistkit.report import plots

    stem = Path(name).stem.replace(" ", "_")
    path = Path(f"{prefix}{stem}.png")
    publish({path: lambda temp: plots.prediction(digits, probabilities, name, temp)})
    return str(path)
