"""Evaluate saved MNIST models on all 10,000 test images and compare them side by side.

    python evaluate.py                       # every .h5 in models/
    python evaluate.py a.h5 b.h5 --json results.json

Works on any Keras classifier of 28x28 digits saved as .h5, also ones trained elsewhere and
saved by Keras 2 / tf.keras (their configs are repaired; stored Python code is never run):
each model gets the images in the layout its input declares, (784,), (28, 28), (28, 28, 1)
or (1, 28, 28), also with 3 channels or padded to 32x32, at the pixel scale it was trained
on (--pixels auto finds it on training images). A score near chance gets a warning; files
that cannot be evaluated get a row saying why.
Exit status: 0 if all were evaluated, 1 if some failed, 2 if none could be.
"""

import argparse
import sys
import time
from pathlib import Path

from mnistkit.cli import add_pixels_flag, positive_float_at_most
from mnistkit.files.records import MODELS_DIR, find_models


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path,
                        help=f"model files or folders of them (default: every .h5 and .keras in "
                             f"{MODELS_DIR}/)")
    parser.add_argument("--data", default=None,
                        help="local MNIST: a folder with the four IDX files or mnist.npz "
                             "(default: $MNIST_DATA, else download through Keras)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the results to FILE as JSON (default: off)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="also write DIR/report.md with confusion matrices, galleries of "
                             "mistakes, per-digit accuracy and a comparison chart (default: off)")
    parser.add_argument("--ensemble", action="store_true",
                        help="add a row for the average of the models' probabilities")
    add_pixels_flag(parser)
    parser.add_argument("--timeout", type=positive_float_at_most(86_400), default=60.0,
                        metavar="SECONDS",
                        help="time a file may take to load and score before its row says it "
                             "hangs (default: 60)")
    parser.add_argument("--memory-limit", type=positive_float_at_most(4096), default=6.0,
                        metavar="GB",
                        help="memory (address space) the process reading a model may use "
                             "(default: 6)")
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Lambda layers and other Python code stored in model files; "
                             "only for files you trust (default: refused)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    from mnistkit.files.saving import OutputError, check_targets

    try:  # outputs are checked first: no minutes of scoring lost to a bad path
        check_targets([args.json] if args.json else [])
        if args.report:
            check_targets([args.report / "report.md"])
    except OutputError as error:
        flag = "--json" if args.json and str(args.json) in str(error) else "--report"
        print(f"error: {flag}: {error}", file=sys.stderr)
        return 2
    paths = find_models(args.models)
    if not paths:
        where = ", ".join(f"{path}/" for path in args.models) or f"{MODELS_DIR}/"
        print(f"error: no .h5 or .keras models in {where}; train one first: "
              "python train_cnn.py",
              file=sys.stderr)
        return 2

    from mnistkit.files.data import DataError, load_mnist
    from mnistkit.files.saving import write_json
    from mnistkit.report.table import ensemble_row, evaluate_files, markdown_table

    try:
        mnist = load_mnist(args.data)
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
        ensemble = ensemble_row(rows, probabilities, mnist.test_labels)
        rows = sorted([ensemble, *rows], key=lambda row: (row.error is not None,
                                                          -(row.accuracy or 0)))

    print(markdown_table(rows))
    print(f"\n{len(evaluated)} of {len(paths)} models evaluated on {len(mnist.test_labels):,} "
          f"test images in {time.perf_counter() - started:.1f} s ({about['device']})")
    try:
        if args.json:
            write_json({"data": mnist.source, "device": about["device"],
                        "versions": about["versions"],
                        "models": [row.as_dict() for row in rows]}, args.json)
            print(f"wrote {args.json}")
        if args.report and evaluated:
            from mnistkit.report.document import write_report

            written = write_report(rows, probabilities, mnist, args.report, about["device"])
            print(f"wrote {written}")
    except OSError as error:  # a full disk, or a folder that changed meanwhile
        print(f"error: could not write the results: {error}", file=sys.stderr)
        return 2
    if not evaluated:
        return 2
    return 1 if len(evaluated) < len(paths) else 0


if __name__ == "__main__":
    sys.exit(main())
