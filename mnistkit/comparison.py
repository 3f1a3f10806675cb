"""Evaluate several model files on the test set and lay the results side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mnistkit.data import Mnist
from mnistkit.evaluation import Row, score
from mnistkit.isolation import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT, score_files
from mnistkit.saving import record_path

__all__ = ["Row", "describe_training", "ensemble_row", "evaluate_files", "markdown_table",
           "read_record"]


def evaluate_files(paths: list[Path], mnist: Mnist, trust_code: bool = False,
                   keep_probabilities: dict | None = None, pixels: str = "auto",
                   timeout: float = DEFAULT_TIMEOUT,
                   memory_gb: float = DEFAULT_MEMORY_GB) -> tuple[list[Row], dict]:
    """A row per file, best accuracy first and failures last; a bad file fails its row only,
    even one that crashes or hangs its reader: files are opened in a worker process.

    With ``keep_probabilities`` (a dict), each evaluated file's test-set probabilities
    are stored in it under the file's path, for ensembles and reports. Also returns what
    the models ran on (device, versions).
    """
    rows = []
    scored, about = score_files(paths, mnist, pixels=pixels, trust_code=trust_code,
                         keep_probabilities=keep_probabilities is not None, timeout=timeout,
                         memory_gb=memory_gb)
    for path, (row, probabilities) in zip(paths, scored, strict=True):
        row.record = read_record(Path(path))
        row.training = describe_training(row.record)
        if keep_probabilities is not None and probabilities is not None:
            keep_probabilities[str(path)] = probabilities
        rows.append(row)
    return sorted(rows, key=lambda row: (row.error is not None, -(row.accuracy or 0))), about


def read_record(model_path: Path) -> dict | None:
    """The JSON record a training script wrote beside the model, if there is a readable one."""
    try:
        record = json.loads(record_path(model_path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def describe_training(record: dict | None) -> str:
    """The training settings in a few words, e.g. 'adam, 5 epochs, batch 128, val 0.2, 14.2 s'."""
    if not record or not isinstance(record.get("arguments"), dict):
        return ""
    arguments = record["arguments"]
    parts = [str(arguments.get("optimizer", "?"))]
    if arguments.get("learning_rate"):
        parts[0] += f" lr {arguments['learning_rate']:g}"
    if arguments.get("schedule", "constant") != "constant":
        parts[0] += f" {arguments['schedule']}"
    parts.append(f"{record.get('epochs_run', arguments.get('epochs', '?'))} epochs")
    parts.append(f"batch {arguments.get('batch_size', '?')}")
    parts.append(f"val {arguments.get('validation_split', '?')}")
    parts.append(f"seed {arguments.get('seed', '?')}")
    if isinstance(record.get("train_seconds"), (int, float)):
        parts.append(f"{record['train_seconds']:.1f} s")
    return ", ".join(parts)


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, readable in a terminal too."""
    lines = ["| model | params | test accuracy | errors | test loss | eval s | pixels | training |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        if row.error:
            lines.append(f"| {row.name} | – | – | – | – | – | – | error: {row.error} |")
            continue
        scale = row.input_scale or "–"
        if row.scale_chosen_by == "auto":
            scale += " (auto)"
        notes = row.training or "–"
        if row.warning:
            notes = f"warning: {row.warning}" + (f"; {row.training}" if row.training else "")
        lines.append(f"| {row.name} | {row.params:,} | {row.accuracy:.4f} | "
                     f"{row.errors}/{row.total} | {row.loss:.4f} | {row.seconds:.2f} | "
                     f"{scale} | {notes} |")
    return "\n".join(lines)


def ensemble_row(rows: list[Row], probabilities: dict[str, np.ndarray],
                 labels: np.ndarray) -> Row:
    """The row of the average of the evaluated models' probabilities (which it adds to
    ``probabilities`` under the row's name)."""
    members = [row for row in rows if row.error is None]
    name = f"ensemble of {len(members)}"
    probabilities[name] = np.mean([probabilities[row.path] for row in members], axis=0)
    result = score(probabilities[name], labels)
    return Row(path=name, params=sum(row.params for row in members),
               accuracy=result.accuracy, errors=result.errors, total=result.total,
               loss=result.loss, seconds=sum(row.seconds for row in members),
               per_class_accuracy=result.per_class_accuracy, input_scale="each its own",
               training="mean probability of " + ", ".join(row.name for row in members))
