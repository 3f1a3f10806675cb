"""Evaluate saved MNIST models on all 10,000 test images and compare them side by side.

    python evaluate.py                       # every .h5 in models/
    python evaluate.py a.h5 b.h5 --json results.json

Works on any Keras classifier of 28x28 digits saved as .h5, also ones trained elsewhere:
each model gets the images in the layout its input declares, (784,), (28, 28), (28, 28, 1)
or (1, 28, 28), scaled to [0, 1]. Files that cannot be evaluated get a row saying why.
Exit status: 0 if all were evaluated, 1 if some failed, 2 if none could be.
"""

import argparse
import sys
import time
from pathlib import Path

MODELS_DIR = Path("models")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path,
                        help=f"model files or folders of them (default: every .h5 in "
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
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Lambda layers and other Python code stored in model files; "
                             "only for files you trust (default: refused)")
    return parser.parse_args(argv)


def find_models(paths: list[Path]) -> list[Path]:
    """The files named, with each folder replaced by the .h5 files in it."""
    if not paths:
        return sorted(MODELS_DIR.glob("*.h5"))
    found = []
    for path in paths:
        found.extend(sorted(path.glob("*.h5")) if path.is_dir() else [path])
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = find_models(args.models)
    if not paths:
        where = ", ".join(f"{path}/" for path in args.models) or f"{MODELS_DIR}/"
        print(f"error: no .h5 models in {where}; train one first: python train_cnn.py",
              file=sys.stderr)
        return 2

    from mnistkit import runtime
    from mnistkit.comparison import ensemble_row, evaluate_files, markdown_table
    from mnistkit.data import DataError, load_mnist
    from mnistkit.saving import write_json

    runtime.load_backend_quietly()
    try:
        mnist = load_mnist(args.data)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    probabilities = {} if args.ensemble or args.report else None
    rows = evaluate_files(paths, mnist, trust_code=args.trust_code,
                          keep_probabilities=probabilities)
    evaluated = [row for row in rows if row.error is None]
    if args.ensemble and len(evaluated) > 1:
        ensemble = ensemble_row(rows, probabilities, mnist.test_labels)
        rows = sorted([ensemble, *rows], key=lambda row: (row.error is not None,
                                                          -(row.accuracy or 0)))

    print(markdown_table(rows))
    print(f"\n{len(evaluated)} of {len(paths)} models evaluated on {len(mnist.test_labels):,} "
          f"test images in {time.perf_counter() - started:.1f} s ({runtime.device()})")
    if args.json:
        write_json({"data": mnist.source, "device": runtime.device(),
                    "versions": runtime.versions(),
                    "models": [row.as_dict() for row in rows]}, args.json)
        print(f"wrote {args.json}")
    if args.report and evaluated:
        from mnistkit.report import write_report

        print(f"wrote {write_report(rows, probabilities, mnist, args.report, runtime.device())}")
    if not evaluated:
        return 2
    return 1 if len(evaluated) < len(paths) else 0


if __name__ == "__main__":
    sys.exit(main())
