"""Model files scored and served from worker processes (``mnistkit.read.isolation``).

- :func:`score_files` (evaluate.py): one worker, which imports the backend once and scores
  file after file, as fast as a run in one process.
- :class:`ModelHost` (predict.py, draw.py): each model loaded once, in a worker of its own,
  answering predictions until closed.
- :class:`Handler`: what a worker does with a model file, in the worker, with the backend
  loaded: the only code that opens model files.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.files.records import read_record
from mnistkit.prepare.inputs import prepare_images
from mnistkit.prepare.pixels import resolve_scale
from mnistkit.read.isolation import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT, MEMORY_HINTS, Worker
from mnistkit.read.loading import ModelError, io_shapes, load_model_file
from mnistkit.read.sniffing import ZIP_SIGNATURE, detect_format
from mnistkit.score.evaluation import Row, as_probabilities, classifier, score_file

MANY_FILES = 20  # from this many entries on, evaluate.py says first what it is about to do
PROGRESS_SECONDS = 10.0  # a longer scoring says how far it got, this often, on stderr


class Handler:
    """Answers the requests a worker receives: ``about``, ``score``, ``load``, ``predict``."""

    def __init__(self, mnist: Mnist | None):
        from mnistkit import runtime

        runtime.load_backend_quietly()
        self.device = runtime.device()  # the backend's devices found: its libraries loaded
        self.mnist = mnist
        self.loaded: dict[str, tuple[object, str]] = {}  # path: (model, input scale)

    def about(self) -> dict:
        """What the models run on, for the parent's report."""
        from mnistkit import runtime

        return {"device": self.device, "versions": runtime.versions(),
                "backend": runtime.backend()}

    def score(self, path: str, pixels: str, trust_code: bool,
              keep_probabilities: bool) -> tuple[Row, np.ndarray | None]:
        """evaluate.py's whole stage for one file: a (row, probabilities) pair, the row with
        the model's cost timed here, where it ran, and with its accuracy on each corrupted
        test set when the parent built them (``CorruptedMnist``). Keras' global state (layer
        names, graphs) is reset after each file, so that nothing one file left behind can
        touch the next one's row."""
        import keras

        from mnistkit.prepare.corruptions import corrupted_sets

        try:
            row, probabilities = score_file(path, self.mnist, pixels=pixels,
                                            trust_code=trust_code,
                                            keep_probabilities=keep_probabilities,
                                            measure_cost=True,
                                            corruptions=corrupted_sets(self.mnist))
            if row.error and any(hint in row.error for hint in MEMORY_HINTS):
                # The backend's allocators may keep what they got: the next file's row
                # would fail too. The worker ends, and a fresh one takes the next file.
                raise MemoryError(row.error)
            return row, probabilities
        finally:
            keras.backend.clear_session(free_memory=True)

    def load(self, path: str, pixels: str, trust_code: bool) -> tuple[str, int]:
        """Load a model to keep for predictions: its input scale and parameter count."""
        model = load_model_file(path, trust_code=trust_code)
        if pixels == "auto" and self.mnist is None:
            scale = "0-1"  # no training images to decide with: MNIST's usual scale
        else:
            scale, _ = resolve_scale(classifier(model), pixels, self.mnist)
        self.loaded[path] = (model, scale)
        for count in (1, 2):  # trace the call once now, for one digit and for several
            self.predict(path, np.zeros((count, 28, 28), np.uint8))
        return scale, int(model.count_params())

    def predict(self, path: str, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, 10) for uint8 images (n, 28, 28). ``predict_on_batch`` runs the
        compiled call once: a millisecond or two, where ``model.predict`` sets up a dataset
        and callbacks on every call (tens of milliseconds)."""
        if path not in self.loaded:
            raise ModelError("the model is not loaded")
        model, scale = self.loaded[path]
        inputs = prepare_images(images, io_shapes(model)[0], scale)
        outputs = np.asarray(model.predict_on_batch(inputs), np.float64)
        if not np.all(np.isfinite(outputs)):
            raise ModelError("its outputs are not finite numbers (NaN or infinite weights?)")
        return as_probabilities(outputs.reshape(len(images), -1))


def not_a_model(path: str | Path) -> str | None:
    """Why the entry at ``path`` is no model file, told by its first bytes without a worker
    (empty, text, a FIFO); None where only a worker can tell: a file like a model, one gone
    or unreadable, a zip (its directory, maybe huge, is read where memory is limited)."""
    path = Path(path)
    try:
        if not path.exists():
            return None
        if path.is_file():
            with open(path, "rb") as file:
                if file.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE:
                    return None
        detect_format(path)
    except ModelError as error:
        return str(error)
    except OSError:
        return None
    return None


def score_files(paths: list[Path], mnist: Mnist, pixels: str = "auto", trust_code: bool = False,
                keep_probabilities: bool = False, timeout: float = DEFAULT_TIMEOUT,
                memory_gb: float = DEFAULT_MEMORY_GB,
                handler: type = Handler) -> tuple[list[tuple], dict]:
    """``evaluation.score_file`` for each file, in a worker: a (row, probabilities) pair each,
    and what the worker computed on (device, versions). Entries that are plainly no model
    (:func:`not_a_model`) get their row here and never reach the worker: each file costs the
    worker a clean-up of the backend's state, a fifth of a second. Progress goes to stderr."""
    results: list = [(Row(path=str(path), error=why), None) if (why := not_a_model(path))
                     else None for path in paths]
    todo = [index for index, result in enumerate(results) if result is None]
    if len(paths) >= MANY_FILES:
        print(f"scoring {len(todo):,} model file{'s' * (len(todo) != 1)}" + (
              f" of {len(paths):,} entries; the other {len(paths) - len(todo):,} are not "
              "model files" if len(todo) < len(paths) else ""), file=sys.stderr, flush=True)
    about = {"device": "none", "versions": {}, "backend": None}
    if not todo:
        return results, about
    try:
        worker = Worker(handler, mnist, timeout, memory_gb)
    except ModelError as error:  # every row says why: none could be opened
        for index in todo:
            results[index] = (Row(path=str(paths[index]), error=str(error)), None)
        return results, about
    about["device"] = "unknown"
    try:
        with contextlib.suppress(ModelError):  # only a description: the rows still come
            about = worker.call("about")
        said = time.monotonic()
        for done, index in enumerate(todo):
            try:
                results[index] = worker.call("score", str(paths[index]), pixels, trust_code,
                                             keep_probabilities)
            except ModelError as error:
                results[index] = (Row(path=str(paths[index]), error=str(error)), None)
            if time.monotonic() - said > PROGRESS_SECONDS and done + 1 < len(todo):
                print(f"scored {done + 1:,} of {len(todo):,} model files", file=sys.stderr,
                      flush=True)
                said = time.monotonic()
    finally:
        worker.close()
    return results, about


@dataclass
class HostedModel:
    path: str
    error: str | None = None
    input_scale: str | None = None
    params: int | None = None
    record: dict | None = None
    record_error: str | None = None


class ModelHost:
    """Models loaded once, each in a worker process of its own, for predictions on demand."""

    def __init__(self, paths: list[Path], trust_code: bool = False, pixels: str = "auto",
                 mnist: Mnist | None = None, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB, handler: type = Handler):
        self.paths = [str(path) for path in paths]
        self.handler = handler
        self.options = (pixels, trust_code)
        # Only what choosing a pixel scale needs travels to each worker.
        self.mnist = mnist.subset(len(mnist.train_labels), 0) if mnist is not None else None
        self.timeout, self.memory_gb = timeout, memory_gb
        self.models: list[HostedModel] = []
        self._workers: dict[str, Worker] = {}
        self._pending: dict[str, Future] = {}  # path: its latest predict_soon
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load every model; a file that cannot be loaded gets ``error``, nothing raises.
        The workers start side by side: each spends seconds importing the backend."""
        with ThreadPoolExecutor(max_workers=min(len(self.paths), os.cpu_count() or 1) or 1) as pool:
            self.models = list(pool.map(self._load, self.paths))

    def _load(self, path: str) -> HostedModel:
        record, record_error = read_record(Path(path))
        hosted = HostedModel(path, record=record, record_error=record_error)
        hosted.error = not_a_model(path)  # no worker, and its gigabyte, for what is no model
        if hosted.error:
            return hosted
        try:
            worker = Worker(self.handler, self.mnist, self.timeout, self.memory_gb)
            self._workers[path] = worker
            hosted.input_scale, hosted.params = worker.call("load", path, *self.options)
        except ModelError as error:
            hosted.error = str(error)
            if path in self._workers:  # never asked again: its worker goes now
                self._workers.pop(path).close()
        return hosted

    def predict(self, path: str, images: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, 10), for uint8 images (n, 28, 28); thread-safe. If the
        worker fails it is replaced (the model reloaded) and ModelError says why."""
        worker = self._workers[path]
        starts = worker.starts
        try:
            return worker.call("predict", path, images)
        except ModelError:
            if worker.starts != starts:  # a fresh worker: load the model for the next request
                with contextlib.suppress(ModelError):
                    worker.call("load", path, *self.options)
            raise

    def predict_soon(self, path: str, images: np.ndarray) -> Future | None:
        """``predict`` in a thread of its own: a Future of the probabilities, or None while
        the model is still busy with an earlier request, whose answer came too late: no
        request queues behind a slow model. A daemon thread: a model that hangs until its
        worker's time limit does not hold up the end of the process."""
        with self._lock:
            if path in self._pending and not self._pending[path].done():
                return None
            future = self._pending[path] = Future()
        threading.Thread(target=self._fulfil, args=(future, path, images), daemon=True).start()
        return future

    def _fulfil(self, future: Future, path: str, images: np.ndarray) -> None:
        try:
            future.set_result(self.predict(path, images))
        except Exception as error:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(error)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
