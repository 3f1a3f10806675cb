"""Evaluate several model files on the test set and lay the results side by side."""

from __future__ import annotations

from numbers import Real
from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.files.records import read_record
from mnistkit.read.isolation import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT
from mnistkit.score.evaluation import Row, score
from mnistkit.score.workers import score_files


def evaluate_files(paths: list[Path], mnist: Mnist, trust_code: bool = False,
                   keep_probabilities: dict | None = None, pixels: str = "auto",
                   timeout: float = DEFAULT_TIMEOUT,
                   memory_gb: float = DEFAULT_MEMORY_GB) -> tuple[list[Row], dict]:
    """A row per file, best accuracy first and failures last; a bad file fails its row only,
    even one that crashes or hangs its reader: files are opened in a worker process.
    A record that cannot be read costs nothing but its settings: the row says why.

    With ``keep_probabilities`` (a dict), each evaluated file's test-set probabilities
    are stored in it under the file's path, for ensembles and reports. Also returns what
    the models ran on (device, versions).
    """
    records = [read_record(path) for path in paths]  # bounded: before minutes of scoring
    scored, about = score_files(paths, mnist, pixels=pixels, trust_code=trust_code,
                                keep_probabilities=keep_probabilities is not None,
                                timeout=timeout, memory_gb=memory_gb)
    rows = []
    for path, (row, probabilities), (record, record_error) in zip(paths, scored, records,
                                                                   strict=True):
        row.record, row.training = record, describe_training(record)
        if record_error:
            row.warning = "; ".join(filter(None, [row.warning,
                                                  f"record unreadable: {record_error}"]))
        if keep_probabilities is not None and probabilities is not None:
            keep_probabilities[str(path)] = probabilities
        rows.append(row)
    return sorted(rows, key=lambda row: (row.error is not None, -(row.accuracy or 0))), about


def describe_training(record: dict | None) -> str:
    """The training settings in a few words, e.g. 'adam, 5 epochs, batch 128, val 0.2, 14.2 s'.
    Values of the wrong type are shown as they are, never formatted as numbers."""
    if not record or not isinstance(record.get("arguments"), dict):
        return ""
    arguments = record["arguments"]

    def shown(key: str, default: object = "?") -> str:
        return " ".join(str(arguments.get(key, default)).split())[:40]

    parts = [shown("optimizer")]
    rate = arguments.get("learning_rate")
    if isinstance(rate, Real) and not isinstance(rate, bool) and rate:
        parts[0] += f" lr {rate:g}"
    if arguments.get("schedule", "constant") != "constant":
        parts[0] += f" {shown('schedule')}"
    epochs = record.get("epochs_run", arguments.get("epochs", "?"))
    parts.append(f"{' '.join(str(epochs).split())[:20]} epochs")
    parts += [f"batch {shown('batch_size')}", f"val {shown('validation_split')}",
              f"seed {shown('seed')}"]
    seconds = record.get("train_seconds")
    if isinstance(seconds, Real) and not isinstance(seconds, bool):
        parts.append(f"{seconds:.1f} s")
    return ", ".join(parts)


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, readable in a terminal too."""
    lines = ["| model | params | test accuracy | errors | test loss | eval s | pixels | training |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        if row.error:
            lines.append(f"| {cell(row.name)} | – | – | – | – | – | – | "
                         f"error: {cell(row.error)} |")
            continue
        scale = row.input_scale or "–"
        if row.scale_chosen_by == "auto":
            scale += " (auto)"
        notes = row.training or "–"
        if row.warning:
            notes = f"warning: {row.warning}" + (f"; {row.training}" if row.training else "")
        lines.append(f"| {cell(row.name)} | {row.params:,} | {row.accuracy:.4f} | "
                     f"{row.errors}/{row.total} | {row.loss:.4f} | {row.seconds:.2f} | "
                     f"{scale} | {cell(notes)} |")
    return "\n".join(lines)


def cell(text: str) -> str:
    """Text for one table cell on one line: line breaks and bars shown, not obeyed."""
    return text.replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")


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
