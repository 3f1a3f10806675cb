"""Classify your own pictures of handwritten digits with a trained model.

    python predict.py my_digit.png photo_of_a_7.jpg
    python predict.py --test-index 0          # MNIST test image 0, like the tutorials
    python predict.py digit.png --show --json

Any PNG, JPEG, BMP or GIF, any size, dark on light or light on dark, colour or gray. Each
picture is prepared the way MNIST was made: grayscale, background to black, cropped to the
digit, fitted into a 20x20 box, centred by its centre of mass in 28x28, scaled to 0-1.
A picture of a number (digits written apart, on one line) is read left to right, each digit
prepared on its own: "photo.jpg: 1984". The model is by default the most accurate one in
models/ (by its JSON record).
"""

import argparse
import json
import sys
from pathlib import Path

from mnistkit.cli import add_pixels_flag

MODELS_DIR = Path("models")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="pictures of digits")
    parser.add_argument("--model", type=Path, default=None,
                        help=f"model file (default: the most accurate in {MODELS_DIR}/)")
    parser.add_argument("--test-index", type=int, action="append", default=[], metavar="N",
                        help="also classify MNIST test image N (repeatable)")
    parser.add_argument("--show", action="store_true",
                        help="write PREFIX<name>.png: the prepared 28x28 input beside "
                             "the probabilities (default: off)")
    parser.add_argument("--show-prefix", default="predictions/",
                        help="where --show writes (default: predictions/)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON instead of text")
    parser.add_argument("--data", default=None,
                        help="local MNIST for --test-index (default: $MNIST_DATA, else download)")
    add_pixels_flag(parser)
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Python code stored in the model file (default: refused)")
    args = parser.parse_args(argv)
    if not args.images and not args.test_index:
        parser.error("give at least one image or --test-index N")
    return args


def best_model(folder: Path) -> Path:
    """The model in ``folder`` whose JSON record has the highest test accuracy."""
    from mnistkit.comparison import read_record
    from mnistkit.saving import model_files

    scored = [(record["test"]["accuracy"], path)
              for path in (model_files(folder) if folder.is_dir() else [])
              if (record := read_record(path)) and isinstance(record.get("test"), dict)]
    if not scored:
        raise FileNotFoundError(f"no trained models with records in {folder}/; train one "
                                "(python train_cnn.py) or pass --model")
    return max(scored)[1]


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    from mnistkit.data import DataError, load_mnist, mnist_for_pixels
    from mnistkit.images import ImageError, read_picture, split_digits
    from mnistkit.isolation import ModelHost
    from mnistkit.loading import ModelError

    host = None
    try:
        model_path = args.model or best_model(MODELS_DIR)
        mnist = load_mnist(args.data) if args.test_index else None
        mnist, args.pixels = mnist_for_pixels(args.pixels, args.data, mnist)
        # The model file is opened in a worker process: a damaged one cannot crash this one.
        host = ModelHost([model_path], trust_code=args.trust_code, pixels=args.pixels,
                         mnist=mnist)
        host.start()
        if host.models[0].error:
            raise ModelError(host.models[0].error)
        scale = host.models[0].input_scale
    except (FileNotFoundError, ModelError, DataError) as error:
        where = f"{model_path}: " if isinstance(error, ModelError) else ""
        print(f"error: {where}{error}", file=sys.stderr)
        if host:
            host.close()
        return 2

    inputs, results, failed = [], [], 0
    for path in args.images:
        try:
            # A picture of a number gives each of its digits, left to right.
            inputs.append((str(path), split_digits(read_picture(path)),
                           None))
        except ImageError as error:
            message = str(error) if str(path) in str(error) else f"{path}: {error}"
            print(f"error: {message}", file=sys.stderr)
            failed += 1
    for index in args.test_index:
        if not 0 <= index < len(mnist.test_labels):
            print(f"error: --test-index {index}: the test set has images 0 to "
                  f"{len(mnist.test_labels) - 1}", file=sys.stderr)
            failed += 1
            continue
        inputs.append((f"test image {index}", [mnist.test_images[index] / 255],
                       int(mnist.test_labels[index])))

    probabilities = []
    try:
        if inputs:
            import numpy as np

            batch = np.stack([digit for _, digits, _ in inputs for digit in digits])
            # Back to 8-bit pixels, as MNIST stores them, so that scaling and layout for the
            # model happen in one place (mnistkit.inputs.prepare_images, in the worker).
            probabilities = host.predict(str(model_path), np.round(batch * 255).astype(np.uint8))
    except ModelError as error:
        print(f"error: {model_path}: {error}", file=sys.stderr)
        return 2
    finally:
        host.close()
    start = 0
    for name, digits, label in inputs:
        # The single-digit fields describe the first digit; "reading" and "digits" all.
        picture, probs, start = digits[0], probabilities[start], start + len(digits)
        results.append({**describe(name, probs, label),
                        **read_number(probabilities[start - len(digits):start]),
                        "input_scale": scale})
        if args.show:
            try:
                results[-1]["shown"] = show(name, picture, probs, args.show_prefix)
            except OSError as error:
                print(f"error: --show: {error}", file=sys.stderr)
                failed += 1
    print(json.dumps(results, indent=2) if args.json else
          "\n".join(as_text(result) for result in results)
          + f"\n(model: {model_path}, pixels {scale})")
    if failed:
        return 2 if not results else 1
    return 0


def describe(name: str, probabilities, label: int | None) -> dict:
    top = probabilities.argsort()[::-1][:3]
    result = {"file": name, "predicted": int(top[0]),
              "probabilities": [round(float(p), 6) for p in probabilities],
              "top3": [[int(d), round(float(probabilities[d]), 6)] for d in top]}
    if label is not None:
        result["true_label"] = label
    return result


def read_number(probabilities) -> dict:
    """Each digit of a picture (left to right): ``reading`` is their answers as a string."""
    digits = [{"predicted": int(row.argmax()),
               "probabilities": [round(float(p), 6) for p in row]} for row in probabilities]
    return {"reading": "".join(str(digit["predicted"]) for digit in digits), "digits": digits}


def as_text(result: dict) -> str:
    if len(result.get("digits", ())) > 1:  # a number: "photo.jpg: 1984   [1: 0.998, ...]"
        tops = ", ".join(f"{d['predicted']}: {max(d['probabilities']):.3f}"
                         for d in result["digits"])
        return f"{result['file']}: {result['reading']}   [{tops}]"
    top = ", ".join(f"{digit}: {p:.3f}" for digit, p in result["top3"])
    truth = f" (true label {result['true_label']})" if "true_label" in result else ""
    return f"{result['file']}: {result['predicted']}{truth}   [{top}]"


def show(name: str, picture, probabilities, prefix: str) -> str:
    from mnistkit import plots
    from mnistkit.saving import publish

    stem = Path(name).stem.replace(" ", "_")
    path = Path(f"{prefix}{stem}.png")
    publish({path: lambda temp: plots.prediction(picture, probabilities, name, temp)})
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
