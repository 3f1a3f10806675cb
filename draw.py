"""Draw digits in the browser and watch every saved model read them, live.

    python draw.py                          # models/, one per run, at http://127.0.0.1:8000/
    python draw.py --model models/cnn_deeper.h5 --model models/cnn_fast.h5 --port 8080

Open the address it prints: the page is served as soon as the first model is ready (the most
accurate first), and the others join it as they load. Draw with the mouse, a finger or a
pen; several digits written apart are read left to right; drop a picture file on the pad to
read it. Each model's answer and its ten probabilities appear as you draw, most accurate
model first, beside the 28x28 picture the models saw (prepared as predict.py prepares
pictures). Scripts can use the same endpoint: POST a PNG or JPEG to /api/predict and get
JSON back, e.g.

    curl --data-binary @digit.png http://127.0.0.1:8000/api/predict

The server listens on 127.0.0.1 only (this machine); --host 0.0.0.0 serves other machines too.
Ctrl-C stops it.
"""

from __future__ import annotations

from mnistkit.environment import require_installed

require_installed()  # outside the project's environment: one line saying what to install

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mnistkit.cli import Parser, add_pixels_flag
from mnistkit.interrupts import run_main
from mnistkit.read.finding import MODELS_DIR, model_files

if TYPE_CHECKING:  # the server and the models load only when needed: --help answers at once
    from mnistkit.page.server import DrawServer
    from mnistkit.score.hosting import HostedModel, ModelHost


def parse_args(argv=None) -> argparse.Namespace:
    parser = Parser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", default=[], metavar="PATH",
                        help="a model file to read the drawings (repeatable; default: one model "
                             f"per trained run in {MODELS_DIR}/, without the exports beside "
                             "them)")
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


def model_paths(given: list[Path]) -> tuple[list[Path], list[Path]]:
    """The models given, or one model per trained run in models/ (not the exports that
    export.py wrote beside a model: ``--model`` takes those); and the files left out.
    OSError says what to do."""
    for path in given:
        try:
            there = path.exists()  # a file, or a SavedModel folder
        except OSError as error:  # a name too long for the file system, say
            raise OSError(f"--model {path}: {(error.strerror or str(error)).lower()}") from None
        if not there:
            raise FileNotFoundError(f"--model {path}: no such file")
    if given:
        return given, []
    from mnistkit.write.formats import exported_from

    found = model_files(MODELS_DIR) if MODELS_DIR.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no model files in {MODELS_DIR}/; train one "
                                "(python train_cnn.py) or pass --model PATH")
    exports = [path for path in found if exported_from(path) is not None]
    return [path for path in found if path not in exports], exports


def main(argv=None) -> int:
    from mnistkit.runtime import escape_unprintable_output

    escape_unprintable_output()
    args = parse_args(argv)
    try:
        paths, left_out = model_paths(args.model)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from mnistkit.page.server import DrawServer
    from mnistkit.score.pictures import PictureReader

    try:  # the port first: a busy one is said before any model loads
        server = DrawServer((args.host, args.port), None, None)
    except OSError as error:
        print(f"error: --host {args.host} --port {args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    from mnistkit.prepare.pixels import mnist_for_pixels
    from mnistkit.score.hosting import ModelHost

    count = len(paths)
    skipped = (f"; left out {len(left_out)} export{'s' * (len(left_out) != 1)} of them "
               f"({', '.join(path.name for path in left_out)}): --model PATH takes any file"
               if left_out else "")
    print(f"loading {count} model{'s' * (count != 1)}"
          f"{' (one per trained run in models/)' if left_out else ''}{skipped}", flush=True)
    mnist, pixels = mnist_for_pixels(args.pixels, args.data)
    server.reader = reader = PictureReader()
    server.host = host = ModelHost(paths, trust_code=args.trust_code, pixels=pixels,
                                   mnist=mnist)
    try:
        start_models(host)
        if all(model.error for model in host.models):
            print("error: no model could be loaded", file=sys.stderr)
            return 2
        return serve(server, len(host.still_loading()))
    finally:
        server.server_close()
        host.close()
        reader.close()


def start_models(host: ModelHost) -> None:
    """Load the models, each in a worker process of its own (one that crashes or hangs
    costs only its answer), the most accurate first; back once one is ready, the others
    loading behind. A line per model as it is done."""
    count = len(host.paths)
    done = []

    def announce(model: HostedModel) -> None:  # from a loading thread: each line in one write
        done.append(model)
        line = f"  {model.path}: {describe(model)} ({len(done)} of {count} done)\n"
        if len(done) == count and count > 1:
            ready = sum(not hosted.error for hosted in host.models)
            line += (f"all {count} models done: {ready} ready"
                     + (f", {count - ready} could not be loaded" if ready < count else "")
                     + "\n")
        print(line, end="", flush=True)

    host.start(wait=False, announce=announce)


def describe(model: HostedModel) -> str:
    """A model's line: its test accuracy and the pixels it takes, or why it failed."""
    from mnistkit.files.records import test_accuracy

    if model.error:
        return f"error: {model.error}"
    accuracy = test_accuracy(model.record)
    accuracy = (f"{accuracy:.2%} on the test set" if accuracy is not None
                else f"record unreadable ({model.record_error})" if model.record_error
                else "no JSON record")
    return f"{accuracy}, pixels {model.input_scale}"


def serve(server: DrawServer, loading: int) -> int:
    """Serve the page until Ctrl-C; the models still ``loading`` join as they are ready."""
    behind = (f"; {loading} more model{'s' * (loading != 1)} loading, shown on the page "
              f"when {'it is' if loading == 1 else 'they are'} ready" if loading else "")
    # one write: a loading thread may be printing its model's line meanwhile
    print(f"draw digits at {server.url}  (Ctrl-C stops{behind})\n", end="", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, "draw.py stopped"))
