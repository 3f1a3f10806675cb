"""The parent's side of a worker process: file-bound work runs in a worker, never in the
scripts themselves.

A damaged model file can crash the HDF5 library (a segmentation fault), hang it, or make it
allocate without end: all below Python, where no ``try`` can catch it. So a worker process
loads and runs each file; a worker that dies, gives no answer within its time limit or
needs more memory than its limit is replaced, the call raises its tasks' ``failure`` error
saying what happened, in words, and the caller goes on. The scripts that orchestrate import
no TensorFlow.

What a worker does is the :class:`~mnistkit.workers.tasks.Tasks` class it is given, and
``call`` names the method to run (``worker.call(ModelTasks.predict, path, images)``). Workers
die with the process that started them, however it ends (a signal, ``kill -9``): each is
started by one long-lived thread and held as each system allows (``mnistkit.system``: the
kernel's parent-death signal, a Job Object, a watch of the parent), and its log file is
unlinked once it is open (on Windows, removed with the worker's scratch folder).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Concatenate, Generic, ParamSpec, TypeVar

from mnistkit import system
from mnistkit.files import scratch
from mnistkit.workers.serving import MEMORY_HINTS, READY, READY_UNLIMITED, out_of_memory, serve
from mnistkit.workers.tasks import Tasks, error_from_words, task_name

DEFAULT_TIMEOUT = 60.0  # seconds a file may take to load and score
DEFAULT_MEMORY_GB = 6.0  # address space a worker may map beyond its backend's own
STARTUP_SECONDS = 300.0  # importing the backend can take a while on a busy machine

T = TypeVar("T", bound=Tasks)
P = ParamSpec("P")
R = TypeVar("R")


class Worker(Generic[T]):
    """One worker process and the pipe to it: ``tasks(setup)`` is made once in the worker,
    and ``call(tasks.method, *arguments)`` runs that method there and returns its value.
    ``call`` raises the errors ``tasks`` declares as themselves, and ``tasks.failure`` with
    the reason when the worker fails: a fresh worker then takes its place."""

    def __init__(self, tasks: type[T], setup: object = None, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB, reader: str = "model reader"):
        self.tasks, self.setup, self.reader = tasks, setup, reader
        self.timeout, self.memory_gb = timeout, memory_gb
        self.lock = threading.Lock()  # one request at a time on the pipe
        self.closed = False  # for good: a call still in flight then starts no other worker
        self._life = threading.Lock()  # a closing and a replacing thread take turns
        self.starts = 0
        self.scratch = None
        self.guard: system.WorkerGuard | None = None
        self._start()

    def call(self, task: Callable[Concatenate[T, P], R], *arguments: P.args,
             **keywords: P.kwargs) -> R:
        """``task`` (a method of the worker's tasks class) run in the worker."""
        request = (task_name(self.tasks, task), arguments, keywords)
        with self.lock:
            try:
                self.connection.send(request)
                if not self.connection.poll(self.timeout):
                    self._replace()
                    hint = " (--timeout sets the limit)" if self.reader == "model reader" else ""
                    raise self.tasks.failure(f"no answer in {self.timeout:g} s: the file makes "
                                             f"its reader hang{hint}")
                status, *answer = self.connection.recv()
            except (EOFError, OSError):
                why = self._why_it_died()
                self._replace()
                raise self.tasks.failure(why) from None
        if status == "fatal":  # the worker ran out of memory and exited: its heap is suspect
            self._replace()
            raise self.tasks.failure(*answer)
        if status == "error":
            raise error_from_words(self.tasks, *answer)
        return answer[0]

    def close(self) -> None:
        """End the worker for good, also while another thread waits on a call to it."""
        with self._life:
            self.closed = True
            self._stop()

    def _stop(self) -> None:
        if self.log is None:  # stopped already, by a thread that was replacing it
            return
        self.connection.close()
        self.process.kill()
        self.process.join()
        self.guard.close()
        os.close(self.log)
        self.log = None
        scratch.remove_scratch(self.scratch)  # what the file unpacked, however it ended

    def _start(self) -> None:
        self.starts += 1
        context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self.scratch = scratch.make_scratch()
        self.log, log_path = tempfile.mkstemp(prefix="mnistkit-worker-", suffix=".log",
                                              dir=self.scratch)
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=serve, daemon=True,
            args=(child, self.tasks, self.setup, self.memory_gb, self.reader, log_path,
                  os.getpid(), self.scratch))
        try:
            _start_in_spawner_thread(self.process)
            self.guard = system.WorkerGuard(self.process.pid)
            started = self._await("started") == "started"
        finally:
            child.close()
            # The worker has the log open (or never will): nothing is left on disk, however
            # this process ends. Windows refuses to unlink an open file: the scratch folder's
            # removal takes it.
            with contextlib.suppress(PermissionError):
                os.unlink(log_path)
        ready = started and self._await(READY, READY_UNLIMITED)
        if ready:
            self.guard.limit(int(self.memory_gb * 2**30), ready == READY)
        else:
            self.process.kill()
            self.process.join()
            if self.guard is not None:
                self.guard.close()
            last = (self._log_tail().splitlines() or [f"exit status {self.process.exitcode}"])
            os.close(self.log)
            self.log = None
            scratch.remove_scratch(self.scratch)
            raise self.tasks.failure(f"the {self.reader} process did not start ({last[-1]})")

    def _await(self, *words: str) -> str | None:
        """The word of ``words`` the worker said next; None when it said another or died."""
        try:
            if self.connection.poll(STARTUP_SECONDS) and (word := self.connection.recv()) in words:
                return word
        except (EOFError, OSError):  # it died starting: too little memory for the backend
            pass
        return None

    def _replace(self) -> None:
        with self._life:
            self._stop()
            if self.closed:
                raise self.tasks.failure(f"the {self.reader} was closed")
            self._start()

    def _why_it_died(self) -> str:
        self.process.join(5)
        code, log = self.process.exitcode, self._log_tail()
        if (self.guard is not None and self.guard.exceeded) or code == system.KILLED_STATUS or any(
                hint in log for hint in MEMORY_HINTS):
            return out_of_memory(self.memory_gb, self.reader)
        if code is not None and -code in system.CRASH_SIGNALS:
            return f"crashed the {self.reader} ({system.CRASH_SIGNALS[-code]}): the file is damaged"
        return f"the {self.reader} stopped (exit status {code}): the file is damaged"

    def _log_tail(self) -> str:
        if self.log is None:
            return ""
        try:
            size = os.fstat(self.log).st_size
            os.lseek(self.log, max(0, size - 2000), os.SEEK_SET)  # Windows has no os.pread
            return os.read(self.log, 2000).decode(errors="replace").strip()
        except OSError:
            return ""


_spawn_requests: queue.SimpleQueue = queue.SimpleQueue()
_spawner_lock = threading.Lock()
_spawner: threading.Thread | None = None


def _start_in_spawner_thread(process) -> None:
    """Start ``process`` from one thread that lives as long as this process: the kernel's
    parent-death signal follows the thread that started a child, and the threads that ask
    for workers (a pool, a request handler) come and go."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = threading.Thread(target=_spawn_forever, name="mnistkit-spawner",
                                        daemon=True)
            _spawner.start()
    started: Future = Future()
    _spawn_requests.put((process.start, started))
    started.result()


def _spawn_forever() -> None:
    while True:
        start, started = _spawn_requests.get()
        try:
            start()
            started.set_result(None)
        except BaseException as error:  # noqa: BLE001 - handed back to the caller
            started.set_exception(error)
