"""Evaluate several model files on the test set and lay the results side by side."""

from __future__ import annotations

from numbers import Real
from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.files.records import read_record
from mnistkit.read.isolation import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT
from mnistkit.score.evaluation import Row, score
from mnistkit.score.statistics import Comparison, compare_all
from mnistkit.score.workers import score_files

ALL_PAIRS_UP_TO = 5  # models; with more, the terminal names only neighbours in the ranking


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
    """The rows as a Markdown table, readable in a terminal too: one line per model. The
    corrupted column is there only when some row was scored on corrupted images."""
    corrupted = any(row.mean_corruption_accuracy is not None for row in rows)
    extra = " corrupted |" if corrupted else ""
    lines = ["| model | params | test accuracy | errors | test loss | 95% interval | ECE | "
             f"ms/image |{extra} eval s | pixels | training |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
             + " ---: |" * corrupted + " ---: | --- | --- |"]
    for row in rows:
        if row.error:
            lines.append(f"| {cell(row.name)} |" + " – |" * (9 + corrupted)
                         + f" error: {cell(row.error)} |")
            continue
        scale = row.input_scale or "–"
        if row.scale_chosen_by == "auto":
            scale += " (auto)"
        notes = row.training or "–"
        if row.warning:
            notes = f"warning: {row.warning}" + (f"; {row.training}" if row.training else "")
        interval = f"{row.interval[0]:.4f}–{row.interval[1]:.4f}" if row.interval else "–"
        ece = f"{row.ece:.4f}" if row.ece is not None else "–"
        latency = f"{row.latency['ms_per_image_batch1']:.2f}" if row.latency else "–"
        mean = row.mean_corruption_accuracy
        shown = (f" {mean:.4f} |" if mean is not None else " – |") if corrupted else ""
        lines.append(f"| {cell(row.name)} | {row.params:,} | {row.accuracy:.4f} | "
                     f"{row.errors}/{row.total} | {row.loss:.4f} | {interval} | {ece} | "
                     f"{latency} |{shown} {row.seconds:.2f} | {scale} | {cell(notes)} |")
    return "\n".join(lines)


def comparisons(rows: list[Row], labels: np.ndarray) -> list[Comparison]:
    """The exact McNemar test of every pair of evaluated rows, best first."""
    return compare_all({row.path: row.predicted for row in rows if row.error is None},
                       labels)


def comparison_lines(rows: list[Row], pairs: list[Comparison]) -> list[str]:
    """Which differences are real, in words: every pair for a few models, else each model
    against the next in the ranking (every pair is in --json)."""
    order = {row.path: place for place, row in enumerate(rows)}
    names = {row.path: row.name for row in rows}
    evaluated = len({pair.a for pair in pairs} | {pair.b for pair in pairs})
    if evaluated > ALL_PAIRS_UP_TO:
        ranked = sorted(order, key=order.get)
        neighbours = set(zip(ranked, ranked[1:], strict=False))
        pairs = [pair for pair in pairs if (pair.a, pair.b) in neighbours]
    return [pair.verdict(names[pair.a], names[pair.b]) for pair in pairs]


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
    row = Row(path=name, params=sum(row.params for row in members),
              seconds=sum(row.seconds for row in members), input_scale="each its own",
              training="mean probability of " + ", ".join(row.name for row in members))
    row.add_scores(result, probabilities[name], labels)
    if all(member.bytes is not None for member in members):
        row.bytes = sum(member.bytes for member in members)
    return row
