"""Models served to predict.py and draw.py: each loaded once, in a worker process of its own
(:class:`~mnistkit.score.model_reader.ModelReader`), answering predictions until closed."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.files.records import read_record, test_accuracy
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
    loading: bool = False  # its worker is still starting or loading it: not asked yet


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
        self._late: dict[str, Future] = {}  # path: an answer that missed its deadline
        self._lock = threading.Lock()
        self._loaded = threading.Condition()  # told each time a model is done loading
        self._closed = False

    def start(self, wait: bool = True,
              announce: Callable[[HostedModel], None] | None = None) -> None:
        """Load every model; a file that cannot be loaded gets ``error``, nothing raises.
        Workers start side by side, one per core (each spends seconds importing the
        backend), the most accurate model (by its record) first. With ``wait=False`` this
        returns as soon as one model is ready, or all have failed: the others go on loading
        behind, ``loading`` until they are done. ``announce`` hears of each model as it is
        done, from the thread that loaded it, before the model counts as loaded."""
        self.models = [self._unloaded(path) for path in self.paths]
        queued: queue.SimpleQueue[HostedModel] = queue.SimpleQueue()
        for hosted in sorted(self.models, key=lambda m: -(test_accuracy(m.record) or 0)):
            queued.put(hosted)
        # Daemon threads: Ctrl-C while models load need not wait for them.
        loaders = [threading.Thread(target=self._load_queued, args=(queued, announce),
                                    daemon=True)
                   for _ in range(min(len(self.models), os.cpu_count() or 1))]
        for loader in loaders:
            loader.start()
        if wait:
            for loader in loaders:
                loader.join()
        else:
            self.wait_for_first()

    def wait_for_first(self, timeout: float | None = None) -> None:
        """Until a model is ready to answer, or none is left loading."""
        with self._loaded:
            self._loaded.wait_for(lambda: any(not m.loading and not m.error for m in self.models)
                                  or not self.still_loading(), timeout)

    def still_loading(self) -> list[HostedModel]:
        return [hosted for hosted in self.models if hosted.loading]

    @staticmethod
    def _unloaded(path: str) -> HostedModel:
        record, record_error = read_record(Path(path))
        return HostedModel(path, record=record, record_error=record_error, loading=True)

    def _load_queued(self, queued: queue.SimpleQueue, announce) -> None:
        while True:
            try:
                hosted = queued.get_nowait()
            except queue.Empty:
                return
            self._load(hosted)
            if announce and not self._closed:  # before anyone waiting hears it is ready
                announce(hosted)
            with self._loaded:
                hosted.loading = False
                self._loaded.notify_all()

    def _load(self, hosted: HostedModel) -> None:
        path = hosted.path
        hosted.error = refusal_from_first_bytes(path)  # no worker, and its gigabyte, for it
        if hosted.error:
            return
        try:
            reader = ModelReader(self.mnist, self.timeout, self.memory_gb, self.tasks)
            with self._lock:
                if self._closed:  # closed while this worker started: it goes at once
                    reader.close()
                    hosted.error = "closed"
                    return
                self._readers[path] = reader
            hosted.input_scale, hosted.params = reader.load(path, *self.options)
        except ModelError as error:
            hosted.error = str(error)
            with self._lock:
                if path in self._readers:  # never asked again: its worker goes now
                    self._readers.pop(path).close()

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
        the model is still busy with an earlier request whose answer came too late
        (:meth:`mark_late`): no request queues behind a slow model, while models that keep
        their deadlines take every request. A daemon thread: a model that hangs until its
        worker's time limit does not hold up the end of the process."""
        with self._lock:
            late = self._late.get(path)
            if late is not None and not late.done():
                return None
            self._late.pop(path, None)
        future: Future = Future()
        threading.Thread(target=self._fulfil, args=(future, path, images), daemon=True).start()
        return future

    def mark_late(self, path: str, future: Future) -> None:
        """``future``, the model's answer, missed its request's deadline: the model gets no
        new request until it is in."""
        with self._lock:
            self._late[path] = future

    def _fulfil(self, future: Future, path: str, images: np.ndarray) -> None:
        try:
            future.set_result(self.predict(path, images))
        except Exception as error:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(error)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:  # a model still loading in one fails its load: that is all
            reader.close()
