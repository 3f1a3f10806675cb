"""Classify your own pictures of handwritten digits with a trained model.

    python predict.py my_digit.png photo_of_a_7.jpg
    python predict.py --test-index 0          # MNIST test image 0, like the tutorials
    python predict.py digit.png --show --json

Any PNG, JPEG, BMP or GIF, any size, dark on light or light on dark, colour or gray. Each
picture is prepared the way MNIST was made: grayscale, background to black, cropped to the
digit, fitted into a 20x20 box, centred by its centre of mass in 28x28, scaled to 0-1.
The model is by default the most accurate one in models/ (by its JSON record).
"""

import argparse
import json
import sys
from pathlib import Path

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
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Python code stored in the model file (default: refused)")
    args = parser.parse_args(argv)
    if not args.images and not args.test_index:
        parser.error("give at least one image or --test-index N")
    return args


def best_model(folder: Path) -> Path:
    """The model in ``folder`` whose JSON record has the highest test accuracy."""
    from mnistkit.comparison import read_record

    scored = [(record["test"]["accuracy"], path) for path in sorted(folder.glob("*.h5"))
              if (record := read_record(path)) and isinstance(record.get("test"), dict)]
    if not scored:
        raise FileNotFoundError(f"no trained models with records in {folder}/; train one "
                                "(python train_cnn.py) or pass --model")
    return max(scored)[1]


def main(argv=None) -> int:
    args = parse_args(argv)
    from mnistkit import runtime
    from mnistkit.data import DataError, load_mnist
    from mnistkit.evaluation import predict_probabilities
    from mnistkit.images import ImageError, prepare_digit, read_picture
    from mnistkit.loading import ModelError, load_model_file

    try:
        model_path = args.model or best_model(MODELS_DIR)
        runtime.load_backend_quietly()
        model = load_model_file(model_path, trust_code=args.trust_code)
        mnist = load_mnist(args.data) if args.test_index else None
    except (FileNotFoundError, ModelError, DataError) as error:
        where = f"{args.model}: " if isinstance(error, ModelError) and args.model else ""
        print(f"error: {where}{error}", file=sys.stderr)
        return 2

    inputs, results, failed = [], [], 0
    for path in args.images:
        try:
            inputs.append((str(path), prepare_digit(read_picture(path)), None))
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
        inputs.append((f"test image {index}", mnist.test_images[index] / 255,
                       int(mnist.test_labels[index])))

    if inputs:
        import numpy as np

        batch = np.stack([picture for _, picture, _ in inputs])
        # Back to 8-bit pixels, as MNIST stores them, so that scaling and layout for the
        # model happen in the one place every script uses (mnistkit.inputs.prepare_images).
        probabilities = predict_probabilities(model, np.round(batch * 255).astype(np.uint8))
        for (name, picture, label), probs in zip(inputs, probabilities, strict=True):
            results.append(describe(name, probs, label))
            if args.show:
                results[-1]["shown"] = show(name, picture, probs, args.show_prefix)
    print(json.dumps(results, indent=2) if args.json else
          "\n".join(as_text(result) for result in results) + f"\n(model: {model_path})")
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


def as_text(result: dict) -> str:
    top = ", ".join(f"{digit}: {p:.3f}" for digit, p in result["top3"])
    truth = f" (true label {result['true_label']})" if "true_label" in result else ""
    return f"{result['file']}: {result['predicted']}{truth}   [{top}]"


def show(name: str, picture, probabilities, prefix: str) -> str:
    from mnistkit import plots

    stem = Path(name).stem.replace(" ", "_")
    path = Path(f"{prefix}{stem}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    plots.prediction(picture, probabilities, name, path)
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
