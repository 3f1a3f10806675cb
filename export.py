"""Write a trained Keras model in the formats other runtimes read, each checked on the spot.

    python export.py models/cnn_fast.h5                          # all four formats
    python export.py models/cnn_modern.h5 --formats onnx,tflite-int8

The formats, each written beside the model and named after it:

    savedmodel    models/cnn_fast_savedmodel/    TensorFlow SavedModel (Keras' model.export)
    tflite        models/cnn_fast_float.tflite   TensorFlow Lite, float32
    tflite-int8   models/cnn_fast_int8.tflite    TensorFlow Lite, every weight and activation
                                                 int8 (ranges from 500 training images);
                                                 float32 input and output
    onnx          models/cnn_fast_float.onnx     ONNX, float32, opset 13, (N, 28, 28, 1) input

Each export is scored on all 10,000 test images through evaluate.py's own readers and
compared with the Keras model: float exports must predict the same digit for every test image
(a handful may flip on float rounding), int8 must stay within 0.3 points of its accuracy.
Only then are they written, all together; the table of format, size, accuracy, differing
images and milliseconds per image is printed either way. The training scripts write the same
exports after training with --export FORMATS.
Exit status: 0 when all were written, 1 when none was (the error says why), 2 for bad flags;
130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP (in one line, with nothing written).
"""

from __future__ import annotations

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

import argparse
import sys
from pathlib import Path

from mnistkit.cli import Parser, add_pixels_flag
from mnistkit.interrupts import run_main
from mnistkit.write.formats import FORMATS, export_formats


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path,
                        help="a trained Keras model file (.h5 or .keras, told by its content)")
    parser.add_argument("--formats", type=export_formats, default=FORMATS, metavar="FORMATS",
                        help=f"the formats to write, separated by commas, of {', '.join(FORMATS)}"
                             f" (default: all: {','.join(FORMATS)})")
    add_pixels_flag(parser)
    parser.add_argument("--data", default=None,
                        help="local MNIST: a folder with the four IDX files or mnist.npz "
                             "(default: $MNIST_DATA, else download through Keras)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    from mnistkit.files.data import DataError, load_mnist
    from mnistkit.files.saving import OutputError
    from mnistkit.write.errors import ExportError
    from mnistkit.write.exports import check_export, export_and_check

    try:
        check_export(args.model, args.formats)  # in a second, before the backend and MNIST
        export_and_check(args.model, args.formats, load_mnist(args.data), args.pixels)
    except (DataError, ExportError, OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, "export stopped; no export is left half-written"))
