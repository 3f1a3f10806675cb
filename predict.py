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

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

import argparse
import json
import sys
from pathlib import Path

from mnistkit.cli import Parser, absent, add_pixels_flag
from mnistkit.interrupts import run_main
from mnistkit.read.finding import MODELS_DIR
from mnistkit.report.readings import as_text, describe, read_number, show


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="pictures of digits")
    parser.add_argument("--model", type=Path, default=None,
                        help="model file (.h5, .keras, .tflite, .onnx) or SavedModel folder "
                             f"(default: the most accurate in {MODELS_DIR}/)")
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


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    from mnistkit.files.data import DataError
    from mnistkit.read.loading import ModelError

    try:  # said in a second, before the backend and MNIST load
        args.model, missing = checked_paths(args)
    except (FileNotFoundError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        model_path, host, mnist = load_model(args)
    except (FileNotFoundError, ModelError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        inputs, failed = gather_inputs(args, mnist)
        failed += missing
        probabilities = read_inputs(host, str(model_path), inputs)
    except ModelError as error:
        print(f"error: {model_path}: {error}", file=sys.stderr)
        return 2
    finally:
        host.close()
    scale = host.models[0].input_scale
    results, failed_shows = describe_all(inputs, probabilities, scale, args)
    failed += failed_shows
    print(json.dumps(results, indent=2) if args.json else
          "\n".join(as_text(result) for result in results)
          + f"\n(model: {model_path}, pixels {scale})")
    if shown := [result["shown"] for result in results if "shown" in result]:
        # where --show wrote: on stderr with --json, whose stdout is JSON alone
        print(f"wrote {', '.join(shown)}", file=sys.stderr if args.json else sys.stdout)
    if failed:
        return 2 if not results else 1
    return 0


def checked_paths(args: argparse.Namespace) -> tuple[Path, int]:
    """The model to use (``--model``, else the most accurate in models/), refused when it is
    missing or plainly no model; the pictures that are missing each said in a line and left
    out of ``args.images``, and how many. FileNotFoundError when nothing is left to read."""
    from mnistkit.read.loading import ModelError
    from mnistkit.score.model_reader import refusal_from_first_bytes

    if args.model is None:
        from mnistkit.read.finding import best_model

        model = best_model()
    else:
        model = args.model
        if absent(model):
            raise FileNotFoundError(f"--model {model}: no such file or folder")
    refusal = refusal_from_first_bytes(model)
    if refusal:
        raise ModelError(f"{model}: {refusal}")
    present = [path for path in args.images if not absent(path)]
    for path in args.images:
        if path not in present:
            print(f"error: {path}: no such file", file=sys.stderr)
    missing, args.images = len(args.images) - len(present), present
    if not present and not args.test_index:
        raise FileNotFoundError("no picture to read")
    return model, missing


def load_model(args: argparse.Namespace):
    """The model file (by default the most accurate in models/), loaded in a worker process
    (a damaged file cannot crash this one), and MNIST when --test-index or --pixels auto
    needs it."""
    from mnistkit.files.data import load_mnist
    from mnistkit.prepare.pixels import mnist_for_pixels
    from mnistkit.read.loading import ModelError
    from mnistkit.score.hosting import ModelHost

    model_path = args.model
    mnist = load_mnist(args.data) if args.test_index else None
    mnist, pixels = mnist_for_pixels(args.pixels, args.data, mnist)
    host = ModelHost([model_path], trust_code=args.trust_code, pixels=pixels, mnist=mnist)
    host.start()
    if host.models[0].error:
        host.close()
        raise ModelError(f"{model_path}: {host.models[0].error}")
    return model_path, host, mnist


def gather_inputs(args: argparse.Namespace, mnist) -> tuple[list[tuple], int]:
    """(name, uint8 digits (n, 28, 28), true label or None) for each picture and test image,
    and how many could not be read (each said in one line). Pictures are decoded in a worker
    process with a time and memory limit (mnistkit.score.pictures)."""
    from mnistkit.prepare.pictures import ImageError
    from mnistkit.score.pictures import PictureReader, read_picture_file

    inputs, failed = [], 0
    reader = PictureReader() if args.images else None
    try:
        for path in args.images:
            try:
                # A picture of a number gives each of its digits, left to right.
                inputs.append((str(path), reader.digits(read_picture_file(path), str(path)), None))
            except ImageError as error:
                print(f"error: {error}", file=sys.stderr)
                failed += 1
    finally:
        if reader:
            reader.close()
    for index in args.test_index:
        if not 0 <= index < len(mnist.test_labels):
            print(f"error: --test-index {index}: the test set has images 0 to "
                  f"{len(mnist.test_labels) - 1}", file=sys.stderr)
            failed += 1
            continue
        inputs.append((f"test image {index}", mnist.test_images[index:index + 1],
                       int(mnist.test_labels[index])))
    return inputs, failed


def read_inputs(host, model_path: str, inputs: list[tuple]) -> list:
    """The model's probabilities for each input's digits; ModelError if its worker fails."""
    from mnistkit.score.pictures import read_digits

    if not inputs:
        return []
    import numpy as np

    digits = np.concatenate([images for _, images, _ in inputs])
    (answer,) = read_digits(host, digits, [model_path])
    if answer.error:
        from mnistkit.read.loading import ModelError

        raise ModelError(answer.error)
    probabilities, start = [], 0
    for _, images, _ in inputs:
        probabilities.append(answer.probabilities[start:start + len(images)])
        start += len(images)
    return probabilities


def describe_all(inputs: list[tuple], probabilities: list, scale: str,
                 args: argparse.Namespace) -> tuple[list[dict], int]:
    """A result per input (the single-digit fields describe its first digit; "reading" and
    "digits" all), with --show's picture; and how many pictures could not be written."""
    results, failed = [], 0
    for (name, images, label), probs in zip(inputs, probabilities, strict=True):
        results.append({**describe(name, probs[0], label), **read_number(probs),
                        "input_scale": scale})
        if args.show:
            try:
                results[-1]["shown"] = show(name, images, probs, args.show_prefix)
            except OSError as error:
                print(f"error: --show: {error}", file=sys.stderr)
                failed += 1
    return results, failed


if __name__ == "__main__":
    sys.exit(run_main(main, "prediction stopped"))
