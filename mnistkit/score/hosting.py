"""Models served to predict.py and draw.py: each loaded once, in a worker process of its own
(:class:`~mnistkit.score.model_reader.ModelReader`), answering predictions until closed."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.files.records import read_record
from mnistkit.read.loading import ModelError
from mnistkit.score.model_reader import ModelReader, refusal_from_first_bytes
from mnistkit.score.model_tasks import ModelTasks
from mnistkit.workers.process import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT


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
                 memory_gb: float = DEFAULT_MEMORY_GB, tasks: type[ModelTasks] = ModelTasks):
        self.paths = [str(path) for path in paths]
        self.tasks = tasks
        self.options = (pixels, trust_code)
        # Only what choosing a pixel scale needs travels to each worker.
        self.mnist = mnist.subset(len(mnist.train_labels), 0) if mnist is not None else None
        self.timeout, self.memory_gb = timeout, memory_gb
        self.models: list[HostedModel] = []
        self._readers: dict[str, ModelReader] = {}
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
        hosted.error = refusal_from_first_bytes(path)  # no worker, and its gigabyte, for it
        if hosted.error:
            return hosted
        try:
            reader = ModelReader(self.mnist, self.timeout, self.memory_gb, self.tasks)
            self._readers[path] = reader
            hosted.input_scale, hosted.params = reader.load(path, *self.options)
        except ModelError as error:
            hosted.error = str(error)
            if path in self._readers:  # never asked again: its worker goes now
                self._readers.pop(path).close()
        return hosted

    def predict(self, path: str, images: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, 10), for uint8 images (n, 28, 28); thread-safe. If the
        worker fails it is replaced (the model reloaded) and ModelError says why."""
        reader = self._readers[path]
        starts = reader.starts
        try:
            return reader.predict(path, images)
        except ModelError:
            if reader.starts != starts:  # a fresh worker: load the model for the next request
                with contextlib.suppress(ModelError):
                    reader.load(path, *self.options)
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
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
