"""The evaluate.py table: the rows scoring gave, laid side by side, and which differences
between the models are real, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what scoring found: the table shows it, and computes nothing of its own
    from mnistkit.score.evaluation import Row
    from mnistkit.score.statistics import Comparison

ALL_PAIRS_UP_TO = 5  # models; with more, the terminal names only neighbours in the ranking


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
