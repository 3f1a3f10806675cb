"""Model files are opened only in worker processes, never by the scripts themselves.

A damaged model file can crash the HDF5 library (a segmentation fault), hang it, or make it
allocate without end: all below Python, where no ``try`` can catch it. So a worker process
loads and runs each file; a worker that dies, gives no answer within its time limit or
needs more memory than its limit is replaced, only that file's row (or model) says what
happened, in words, and the others go on. The scripts that orchestrate import no TensorFlow.

- :func:`score_files` (evaluate.py): one worker, which imports the backend once and scores
  file after file, as fast as a run in one process.
- :class:`ModelHost` (predict.py, draw.py): each model loaded once, in a worker of its own,
  answering predictions until closed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.data import Mnist
from mnistkit.loading import ModelError

DEFAULT_TIMEOUT = 60.0  # seconds a file may take to load and score
DEFAULT_MEMORY_GB = 6.0  # address space of a worker; TensorFlow alone maps about 3 GB
STARTUP_SECONDS = 300.0  # importing the backend can take a while on a busy machine
_SIGNALS = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
            signal.SIGABRT: "abort", signal.SIGFPE: "arithmetic fault",
            signal.SIGILL: "illegal instruction"}
MEMORY_HINTS = ("bad_alloc", "MemoryError", "Resource exhausted", "out of memory",
                 "Cannot allocate memory", "OOM")


class Worker:
    """One worker process and the pipe to it; ``call`` raises :class:`ModelError` with the
    reason when the worker fails, and a fresh worker takes its place.

    ``setup`` holds what the worker's task handler is made with: ``mnist``, and optionally
    ``tasks``, "module:Class" of the handler (default mnistkit.worker_tasks:Handler).
    """

    def __init__(self, setup: dict, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB):
        self.setup, self.timeout, self.memory_gb = setup, timeout, memory_gb
        self.lock = threading.Lock()  # one request at a time on the pipe
        self.starts = 0
        self._start()

    def call(self, *request):
        with self.lock:
            try:
                self.connection.send(request)
                if not self.connection.poll(self.timeout):
                    self._replace()
                    raise ModelError(f"no answer in {self.timeout:g} s: the file makes its "
                                     "reader hang (--timeout sets the limit)")
                status, value = self.connection.recv()
            except (EOFError, OSError):
                why = self._why_it_died()
                self._replace()
                raise ModelError(why) from None
        if status == "fatal":  # the worker ran out of memory and exited: its heap is suspect
            self._replace()
        if status in ("error", "fatal"):
            raise ModelError(value)
        return value

    def close(self) -> None:
        self.connection.close()
        self.process.kill()
        self.process.join()
        Path(self.log).unlink(missing_ok=True)

    def _start(self) -> None:
        self.starts += 1
        context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        handle, self.log = tempfile.mkstemp(prefix="mnistkit-worker-", suffix=".log")
        os.close(handle)
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, daemon=True,
                                       args=(child, self.setup, self.memory_gb, self.log))
        self.process.start()
        child.close()
        try:
            ready = self.connection.poll(STARTUP_SECONDS) and self.connection.recv() == "ready"
        except (EOFError, OSError):  # it died starting: too little memory for the backend
            ready = False
        if not ready:
            self.process.kill()
            self.process.join()
            last = (self._log_tail().splitlines() or [f"exit status {self.process.exitcode}"])
            raise ModelError(f"the worker process did not start ({last[-1]}); with "
                             f"{self.memory_gb:g} GB of memory it may not fit the backend")

    def _replace(self) -> None:
        self.close()
        self._start()

    def _why_it_died(self) -> str:
        self.process.join(5)
        code, log = self.process.exitcode, self._log_tail()
        if any(hint in log for hint in MEMORY_HINTS) or code == -signal.SIGKILL:
            return f"needed more than the {self.memory_gb:g} GB of memory a model may use"
        if code is not None and -code in _SIGNALS:
            return f"crashed the model reader ({_SIGNALS[-code]}): the file is damaged"
        return f"the model reader stopped (exit status {code}): the file is damaged"

    def _log_tail(self) -> str:
        try:
            return Path(self.log).read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""


def score_files(paths: list[Path], mnist: Mnist, pixels: str = "auto", trust_code: bool = False,
                keep_probabilities: bool = False, timeout: float = DEFAULT_TIMEOUT,
                memory_gb: float = DEFAULT_MEMORY_GB, **setup) -> tuple[list[tuple], dict]:
    """``evaluation.score_file`` for each file, in a worker: a (row, probabilities) pair each,
    and what the worker computed on (device, versions)."""
    from mnistkit.evaluation import Row

    try:
        worker = Worker({"mnist": mnist, **setup}, timeout, memory_gb)
    except ModelError as error:  # every row says why: none could be opened
        return ([(Row(path=str(path), error=str(error)), None) for path in paths],
                {"device": "none", "versions": {}, "backend": None})
    results = []
    about = {"device": "unknown", "versions": {}, "backend": None}
    try:
        with contextlib.suppress(ModelError):  # only a description: the rows still come
            about = worker.call("about")
        for path in paths:
            try:
                results.append(worker.call("score", str(path), pixels, trust_code,
                                           keep_probabilities))
            except ModelError as error:
                results.append((Row(path=str(path), error=str(error)), None))
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


class ModelHost:
    """Models loaded once, each in a worker process of its own, for predictions on demand."""

    def __init__(self, paths: list[Path], trust_code: bool = False, pixels: str = "auto",
                 mnist: Mnist | None = None, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB, **setup):
        self.paths = [str(path) for path in paths]
        self.setup = setup
        self.options = (pixels, trust_code)
        # Only what choosing a pixel scale needs travels to each worker.
        self.mnist = mnist.subset(len(mnist.train_labels), 0) if mnist is not None else None
        self.timeout, self.memory_gb = timeout, memory_gb
        self.models: list[HostedModel] = []
        self._workers: dict[str, Worker] = {}

    def start(self) -> None:
        """Load every model; a file that cannot be loaded gets ``error``, nothing raises.
        The workers start side by side: each spends seconds importing the backend."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(self.paths), os.cpu_count() or 1) or 1) as pool:
            self.models = list(pool.map(self._load, self.paths))

    def _load(self, path: str) -> HostedModel:
        from mnistkit.comparison import read_record

        hosted = HostedModel(path, record=read_record(Path(path)))
        try:
            worker = Worker({"mnist": self.mnist, **self.setup}, self.timeout, self.memory_gb)
            self._workers[path] = worker
            hosted.input_scale, hosted.params = worker.call("load", path, *self.options)
        except ModelError as error:
            hosted.error = str(error)
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

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()


def _serve(connection, setup: dict, memory_gb: float, log: str) -> None:
    """The worker: limit its memory, load the backend, then answer requests until closed."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with open(log, "wb") as stream:
        os.dup2(stream.fileno(), 2)
    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import importlib

    from mnistkit import runtime

    runtime.load_backend_quietly()
    module, name = setup.get("tasks", "mnistkit.worker_tasks:Handler").split(":")
    handler = getattr(importlib.import_module(module), name)(setup["mnist"])
    connection.send("ready")
    while True:
        try:
            kind, *arguments = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", getattr(handler, kind)(*arguments)))
        except MemoryError:
            _exit_out_of_memory(connection, memory_gb)
            return
        except ModelError as error:
            if any(hint in str(error) for hint in MEMORY_HINTS):  # TensorFlow's OOM, reworded
                _exit_out_of_memory(connection, memory_gb)
                return
            connection.send(("error", str(error)))
        except Exception as error:  # noqa: BLE001 - any other failure is the file's reason
            from mnistkit.loading import reason

            if any(hint in f"{type(error).__name__} {error}" for hint in MEMORY_HINTS):
                _exit_out_of_memory(connection, memory_gb)
                return
            connection.send(("error", f"failed to run: {reason(error)}"))


def _exit_out_of_memory(connection, memory_gb: float) -> None:
    """Say why, then end: after a failed allocation the backend's allocators may hold what
    they got, and the next file's row would fail too (the parent starts a fresh worker)."""
    connection.send(("fatal", f"needed more than the {memory_gb:g} GB of memory a model "
                              "may use"))
