"""Evaluate saved MNIST models on all 10,000 test images and compare them side by side.

    python evaluate.py                       # every model in models/
    python evaluate.py a.h5 b.keras c.tflite d.onnx saved_model_dir/ --json results.json

Works on any classifier of 28x28 digits saved as Keras .h5 or .keras, a TensorFlow SavedModel,
TFLite or ONNX (the format is told by the content), also ones trained elsewhere and saved by
Keras 2 / tf.keras (their configs are repaired; stored Python code is never run):
each model gets the images in the layout its input declares, (784,), (28, 28), (28, 28, 1)
or (1, 28, 28), also with 3 channels or padded to 32x32, at the pixel scale it was trained
on (--pixels auto finds it on training images). A score near chance gets a warning; files
that cannot be evaluated get a row saying why. Each accuracy comes with its 95% interval,
each pair of models with an exact McNemar test (which differences are real), each model with
its calibration (ECE) and cost (ms per image); --corruptions adds MNIST-C's 15 corruptions.
Exit status: 0 if all were evaluated, 1 if some failed, 2 if none could be; 130 after Ctrl-C,
143 after SIGTERM, 129 after SIGHUP (in one line; --json and --report are written whole or not).
"""

from __future__ import annotations

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mnistkit.cli import (
    Parser,
    absent,
    add_pixels_flag,
    gigabytes_of_memory,
    positive_float_at_most,
)
from mnistkit.interrupts import run_main
from mnistkit.read.finding import MODELS_DIR, Found, find_models

if TYPE_CHECKING:  # NumPy and the data module load only when needed: --help answers at once
    import numpy as np

TIMEOUT = 60.0  # seconds a file may take to load and be scored
CORRUPTED_TIMEOUT = 16 * TIMEOUT  # with --corruptions: the test set and 15 corrupted copies


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path,
                        help="model files (.h5, .keras, .tflite, .onnx: told by their "
                             "content), SavedModel folders, or folders of them (default: "
                             f"every entry of {MODELS_DIR}/)")
    parser.add_argument("--data", default=None,
                        help="local MNIST: a folder with the four IDX files or mnist.npz "
                             "(default: $MNIST_DATA, else download through Keras)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the results to FILE as JSON (default: off)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="also write DIR/report.md with confusion matrices, galleries of "
                             "mistakes, per-digit accuracy, a comparison chart, the paired "
                             "tests, a reliability diagram and the cost table (default: off)")
    parser.add_argument("--ensemble", action="store_true",
                        help="add a row for the average of the models' probabilities")
    parser.add_argument("--corruptions", nargs="?", const=True, default=False,
                        metavar="PATH",
                        help="also score each model on the test set under MNIST-C's 15 "
                             "corruptions: regenerated here (built once, about a minute, then "
                             "cached), or with PATH the published set: its mnist_c folder, or "
                             "'tfds' for tensorflow-datasets' mnist_corrupted")
    add_pixels_flag(parser)
    parser.add_argument("--timeout", type=positive_float_at_most(86_400), default=None,
                        metavar="SECONDS",
                        help="time a file may take to load and score before its row says it "
                             f"hangs (default: {TIMEOUT:g}; {CORRUPTED_TIMEOUT:g} with "
                             "--corruptions, which scores 16 test sets)")
    parser.add_argument("--memory-limit", type=gigabytes_of_memory, default=6.0,
                        metavar="GB",
                        help="memory (address space) the process reading a model may use "
                             "beyond its backend's own (default: 6; at least 1)")
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Lambda layers and other Python code stored in model files; "
                             "only for files you trust (default: refused)")
    args = parser.parse_args(argv)
    if isinstance(args.corruptions, str):
        from mnistkit.prepare.published_mnist_c import is_published

        if not is_published(args.corruptions):  # `--corruptions a.h5`: a model, as before
            args.models.insert(0, Path(args.corruptions))
            args.corruptions = True
    if args.timeout is None:
        args.timeout = CORRUPTED_TIMEOUT if args.corruptions else TIMEOUT
    return args


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    found = checked_models(args)
    if found is None:
        return 2
    paths = found.models

    from mnistkit.files.data import DataError, load_mnist
    from mnistkit.report.table import markdown_table
    from mnistkit.score.comparing import with_ensemble
    from mnistkit.score.corrupted import with_corruptions
    from mnistkit.score.model_files import evaluate_files

    try:
        mnist = load_mnist(args.data)
        if args.corruptions:
            mnist = with_corruptions(mnist, args.corruptions)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    probabilities = {} if args.ensemble or args.report else None
    rows, about = evaluate_files(paths, mnist, trust_code=args.trust_code,
                                 keep_probabilities=probabilities, pixels=args.pixels,
                                 timeout=args.timeout, memory_gb=args.memory_limit)
    evaluated = [row for row in rows if row.error is None]
    if args.ensemble and len(evaluated) > 1:
        rows = with_ensemble(rows, probabilities, mnist.test_labels)

    print(markdown_table(rows))
    print(f"\n{len(evaluated)} of {len(paths)} models evaluated on {len(mnist.test_labels):,} "
          f"test images in {time.perf_counter() - started:.1f} s ({about['device']})")
    if found.skipped:
        print(f"\nskipped {len(found.skipped)} entries that are not models:")
        print("\n".join(f"- {path}: {why}" for path, why in found.skipped))
    pairs = print_comparisons(rows, mnist.test_labels)
    try:
        write_outputs(args, rows, probabilities, mnist, about, pairs, found.skipped)
    except OSError as error:  # a full disk, or a folder that changed meanwhile
        print(f"error: could not write the results: {error}", file=sys.stderr)
        return 2
    if not evaluated:
        return 2
    return 1 if len(evaluated) < len(paths) else 0


def checked_models(args: argparse.Namespace) -> Found | None:
    """The models to score, once the outputs are known to be writable and every path named
    to be there: said in a second, not after the backend and MNIST have loaded. None after
    one line saying what is wrong."""
    from mnistkit.files.saving import OutputError, check_targets

    try:
        check_targets([args.json] if args.json else [])
        if args.report:
            check_targets([args.report / "report.md", args.report / "report.json"])
    except OutputError as error:
        flag = "--json" if args.json and str(args.json) in str(error) else "--report"
        print(f"error: {flag}: {error}", file=sys.stderr)
        return None
    if missing := [path for path in args.models if absent(path)]:
        print(f"error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return None
    found = find_models(args.models)
    if not found.models:
        where = ", ".join(f"{path}/" for path in args.models) or f"{MODELS_DIR}/"
        print(f"error: nothing to evaluate in {where}{skipped_note(found.skipped)}; train a "
              "model first: python train_cnn.py", file=sys.stderr)
        return None
    return found


def print_comparisons(rows: list, labels: np.ndarray) -> list:
    """The paired test of every two models, which differences are real said in words."""
    from mnistkit.report.table import comparison_lines
    from mnistkit.score.comparing import comparisons

    pairs = comparisons(rows, labels)
    if pairs:
        print("\nPaired on the same images (exact McNemar test; real: p < 0.05):")
        print("\n".join(f"- {line}" for line in comparison_lines(rows, pairs)))
    return pairs


def skipped_note(skipped: list) -> str:
    return f" ({len(skipped)} entries that are not models skipped)" if skipped else ""


def write_outputs(args: argparse.Namespace, rows: list, probabilities: dict | None, mnist,
                  about: dict, pairs: list, skipped: list) -> None:
    """--json and --report, each written whole or not at all."""
    from mnistkit.files.saving import write_json

    if args.json:
        from mnistkit.prepare.published_mnist_c import describe

        write_json({"data": mnist.source, "device": about["device"],
                    "corruptions": describe(getattr(mnist, "corrupted", None)),
                    "versions": about["versions"],
                    "models": [row.as_dict() for row in rows],
                    "comparisons": [pair.as_dict() for pair in pairs],
                    "skipped": [{"file": str(path), "why": why} for path, why in skipped]},
                   args.json)
        print(f"wrote {args.json}")
    if args.report and any(row.error is None for row in rows):
        from mnistkit.report.document import write_report
        from mnistkit.score.comparing import breakdowns

        written = write_report(rows, probabilities, mnist, args.report, about["device"],
                               pairs, breakdowns(rows, probabilities, mnist.test_labels))
        print(f"wrote {written}")


if __name__ == "__main__":
    sys.exit(run_main(main, "evaluation stopped; no output is left half-written"))
