"""``evaluate.py --report DIR``: pictures per model, comparison charts, the paired tests,
calibration, cost and corrupted-image accuracy, report.md and JSON."""

from __future__ import annotations

import datetime
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistkit.files.data import NUM_CLASSES, Mnist
from mnistkit.files.saving import check_targets, move_into_place, write_json
from mnistkit.prepare.corruption_cache import corrupted_sets
from mnistkit.report import plots
from mnistkit.report.table import markdown_table

if TYPE_CHECKING:  # what scoring found: the report draws it, and computes nothing of its own
    from mnistkit.score.comparing import Breakdown
    from mnistkit.score.evaluation import Row
    from mnistkit.score.statistics import Comparison

STEM_MAX = 100  # characters of a model's name in its pictures' names: a file system takes 255


def write_report(rows: list[Row], probabilities: dict[str, np.ndarray], mnist: Mnist,
                 folder: Path, device: str, pairs: list[Comparison],
                 breakdowns: dict[str, Breakdown]) -> Path:
    """Write the report's pictures, ``report.md`` and ``report.json`` into ``folder``;
    ``pairs`` are the paired tests between the models and ``breakdowns`` each model's
    confusion matrix and reliability, by path (``mnistkit.score.comparing``). All are
    drawn in a hidden folder inside, then renamed into place together: a symbolic link, a
    folder or a device at any of their names is refused (OutputError) before one is, so
    nothing is ever written through a link, and a report that fails midway leaves none."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report.", dir=folder))
    try:
        _draft_report(rows, probabilities, mnist, staging, device, pairs, breakdowns)
        staged = {path: folder / path.name for path in sorted(staging.iterdir())}
        check_targets(list(staged.values()))
        move_into_place(staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / "report.md"


def _draft_report(rows: list[Row], probabilities: dict[str, np.ndarray], mnist: Mnist,
                  folder: Path, device: str, pairs: list[Comparison],
                  breakdowns: dict[str, Breakdown]) -> None:
    evaluated = [row for row in rows if row.error is None]
    stems = _unique_stems(evaluated)
    sections, models = [], []
    for row in rows:
        entry = row.as_dict()
        if row.error is None:
            stem, probs = stems[row.path], probabilities[row.path]
            matrix = breakdowns[row.path].confusion
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
                "test_images": len(mnist.test_labels), "models": models,
                "comparisons": [pair.as_dict() for pair in pairs]},
               folder / "report.json")
    (folder / "report.md").write_text("\n".join([
        "# MNIST model report", "",
        f"{len(evaluated)} models on all {len(mnist.test_labels):,} test images ({device}, "
        f"{created}). Best first; numbers also in `report.json`.", "",
        markdown_table(rows), "",
        "## Accuracy per digit", "", _per_class_table(evaluated), "",
        "## Accuracy against size", "", "![accuracy against parameters](comparison.png)", "",
        *_uncertainty_section(evaluated, probabilities, mnist, folder, pairs),
        *_calibration_section(evaluated, breakdowns, folder),
        *_cost_section(evaluated), *_corruption_section(evaluated, mnist, folder),
        "## Each model", "", *sections]))


def _uncertainty_section(rows: list[Row], probabilities: dict[str, np.ndarray], mnist: Mnist,
                         folder: Path, pairs: list[Comparison]) -> list[str]:
    """Which differences are real (every pair), and the images the two best read apart."""
    names = {row.path: row.name for row in rows}
    if not pairs:
        return ["## Which differences are real", "",
                "Each accuracy's 95% Wilson interval is in the table above; with one model "
                "there is no pair to test.", ""]
    lines = ["## Which differences are real", "",
             "Each accuracy's 95% Wilson interval is in the table above. Each pair of models "
             "on the same images, by the exact McNemar test (real: p < 0.05; no correction "
             "for the number of pairs):", "",
             "| A | B | only A right | only B right | p | verdict |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    lines += [f"| {names.get(pair.a, pair.a)} | {names.get(pair.b, pair.b)} | {pair.only_a} | "
              f"{pair.only_b} | {pair.p_value:.3g} | "
              f"{pair.verdict(names.get(pair.a), names.get(pair.b))} |" for pair in pairs]
    best = [row for row in rows if row.path in probabilities][:2]
    if len(best) == 2:
        plots.disagreements(mnist.test_images, mnist.test_labels,
                            (best[0].name, best[1].name),
                            tuple(probabilities[row.path].argmax(axis=1) for row in best),
                            folder / "disagreements.png")
        lines += ["", f"Where the two best, {best[0].name} (A) and {best[1].name} (B), read a "
                  "test image differently:", "",
                  "![images the two best models disagree on](disagreements.png)"]
    return [*lines, ""]


def _calibration_section(rows: list[Row], breakdowns: dict[str, Breakdown],
                         folder: Path) -> list[str]:
    """ECE and NLL per model, and one reliability diagram of them all."""
    shown = [row for row in rows if row.path in breakdowns]
    plots.reliability_diagram({row.name: breakdowns[row.path].reliability for row in shown},
                              folder / "reliability.png")
    return ["## Calibration", "",
            "| model | ECE (15 bins) | NLL |", "| --- | ---: | ---: |",
            *[f"| {row.name} | {row.ece:.4f} | {row.nll:.4f} |" for row in shown], "",
            "![reliability diagram](reliability.png)", ""]


def _cost_section(rows: list[Row]) -> list[str]:
    """Size and speed, as measured in the worker that scored each model."""
    lines = ["## Cost", "", "Timed where the model was scored: the median of 50 single-image "
             "calls, and the best of 3 batches of 1,000.", "",
             "| model | params | bytes on disk | ms per image (batch 1) | "
             "images/s (batch 1,000) |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        size = f"{row.bytes:,}" if row.bytes is not None else "–"
        latency = row.latency or {}
        one = latency.get("ms_per_image_batch1")
        many = latency.get("images_per_second_batch1000")
        lines.append(f"| {row.name} | {row.params:,} | {size} | "
                     f"{f'{one:.2f}' if one is not None else '–'} | "
                     f"{f'{many:,.0f}' if many is not None else '–'} |")
    return [*lines, ""]


def _corruption_section(rows: list[Row], mnist: Mnist, folder: Path) -> list[str]:
    """Accuracy under each MNIST-C corruption, when evaluate.py ran with --corruptions, and
    one test digit under each, so that a reader sees what each name means."""
    scored = [row for row in rows if row.corruption_accuracy]
    sets = corrupted_sets(mnist)
    if not scored or sets is None:
        return []
    names = list(scored[0].corruption_accuracy)
    plots.corruption_gallery(mnist.test_images[0], {name: sets[name][0] for name in names},
                             folder / "corruptions.png")
    lines = ["## Corrupted images (MNIST-C)", "",
             "![test image 0 under each corruption](corruptions.png)", "",
             "| corruption | " + " | ".join(row.name for row in scored) + " |",
             "| --- |" + " ---: |" * len(scored)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            f"{row.corruption_accuracy.get(name, float('nan')):.4f}" for row in scored) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{row.mean_corruption_accuracy:.4f}**"
                                              for row in scored) + " |")
    return [*lines, ""]


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
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(row.name).stem)[:STEM_MAX] or "model"
        candidate, number = stem, 2
        while candidate in stems.values():
            candidate, number = f"{stem}_{number}", number + 1
        stems[row.path] = candidate
    return stems
