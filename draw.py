"""Draw digits in the browser and watch every saved model read them, live.

    python draw.py                          # every model in models/, at http://127.0.0.1:8000/
    python draw.py --model models/cnn.h5 --model models/modern.h5 --port 8080

Open the address it prints. Draw with the mouse, a finger or a pen; several digits written
apart are read left to right; drop a picture file on the pad to read it. Each model's answer
and its ten probabilities appear as you draw, most accurate model first, beside the 28x28
picture the models saw (prepared as predict.py prepares pictures). Scripts can use the same
endpoint: POST a PNG or JPEG to /api/predict and get JSON back, e.g.

    curl --data-binary @digit.png http://127.0.0.1:8000/api/predict

The server listens on 127.0.0.1 only (this machine); --host 0.0.0.0 serves other machines too.
Ctrl-C stops it.
"""

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

import argparse
import sys
from pathlib import Path

from mnistkit.cli import add_pixels_flag
from mnistkit.interrupts import run_main
from mnistkit.read.finding import MODELS_DIR, model_files


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", default=[], metavar="PATH",
                        help=f"a model file to read the drawings (repeatable; default: every "
                             f"model in {MODELS_DIR}/)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to listen on (default: 8000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    add_pixels_flag(parser)
    parser.add_argument("--data", default=None,
                        help="local MNIST for --pixels auto (default: $MNIST_DATA, else "
                             "download; without it, 0-1 pixels)")
    parser.add_argument("--trust-code", action="store_true",
                        help="allow Python code stored in the model files (default: refused)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: a port is between 0 and 65535")
    return args


def model_paths(given: list[Path]) -> list[Path]:
    """The models given, or every model file in models/; OSError says what to do."""
    for path in given:
        try:
            there = path.exists()  # a file, or a SavedModel folder
        except OSError as error:  # a name too long for the file system, say
            raise OSError(f"--model {path}: {(error.strerror or str(error)).lower()}") from None
        if not there:
            raise FileNotFoundError(f"--model {path}: no such file")
    if given:
        return given
    found = model_files(MODELS_DIR) if MODELS_DIR.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no model files in {MODELS_DIR}/; train one "
                                "(python train_cnn.py) or pass --model PATH")
    return found


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    try:
        paths = model_paths(args.model)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    host, reader = start_models(paths, args)
    try:
        if all(model.error for model in host.models):
            print("error: no model could be loaded", file=sys.stderr)
            return 2
        return serve(host, reader, args)
    finally:
        host.close()
        reader.close()


def start_models(paths: list[Path], args: argparse.Namespace):
    """The models, each loaded in a worker process of its own (one that crashes or hangs
    costs only its answer), and the worker that decodes pictures; a line per model."""
    from mnistkit.files.records import test_accuracy
    from mnistkit.page.answers import ranked
    from mnistkit.prepare.pixels import mnist_for_pixels
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.pictures import PictureReader

    mnist, pixels = mnist_for_pixels(args.pixels, args.data)
    print(f"loading {len(paths)} model{'s' * (len(paths) != 1)} ...", flush=True)
    host = ModelHost(paths, trust_code=args.trust_code, pixels=pixels, mnist=mnist)
    host.start()
    for model in ranked(host.models):
        accuracy = test_accuracy(model.record)
        accuracy = (f"{accuracy:.2%} on the test set" if accuracy is not None
                    else f"record unreadable ({model.record_error})" if model.record_error
                    else "no JSON record")
        print(f"  {model.path}: " + (f"error: {model.error}" if model.error
                                     else f"{accuracy}, pixels {model.input_scale}"))
    return host, PictureReader()


def serve(host, reader, args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C."""
    from mnistkit.page.server import DrawServer

    try:
        server = DrawServer((args.host, args.port), host, reader)
    except OSError as error:
        print(f"error: --host {args.host} --port {args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    print(f"draw digits at {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0

if __name__ == "__main__":
    sys.exit(run_main(main, "draw.py stopped"))
