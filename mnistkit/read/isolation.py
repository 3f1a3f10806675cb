"""Model files are opened only in worker processes, never by the scripts themselves.

A damaged model file can crash the HDF5 library (a segmentation fault), hang it, or make it
allocate without end: all below Python, where no ``try`` can catch it. So a worker process
loads and runs each file; a worker that dies, gives no answer within its time limit or
needs more memory than its limit is replaced, the call raises :class:`ModelError` saying
what happened, in words, and the caller goes on. The scripts that orchestrate import no
TensorFlow.

This module is the plumbing only: what a worker does is the ``handler`` class it is given
(``mnistkit.score.workers.Handler``). Workers die with the process that started them, however
it ends (a signal, ``kill -9``): each is started by one long-lived thread and asks the kernel
to kill it when that thread's process is gone, and its log file is unlinked once it is open.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future

from mnistkit.files import scratch
from mnistkit.read.loading import ModelError, reason

DEFAULT_TIMEOUT = 60.0  # seconds a file may take to load and score
DEFAULT_MEMORY_GB = 6.0  # address space a worker may map beyond its backend's own
STARTUP_SECONDS = 300.0  # importing the backend can take a while on a busy machine
_SIGNALS = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
            signal.SIGABRT: "abort", signal.SIGFPE: "arithmetic fault",
            signal.SIGILL: "illegal instruction"}
MEMORY_HINTS = ("bad_alloc", "MemoryError", "Resource exhausted", "out of memory",
                "Cannot allocate memory", "OOM")
_PR_SET_PDEATHSIG = 1


class Worker:
    """One worker process and the pipe to it; ``call`` raises :class:`ModelError` with the
    reason when the worker fails, and a fresh worker takes its place.

    In the worker, ``handler(setup)`` is made once, and each
    ``call(kind, *arguments)`` runs ``handler.kind(*arguments)``.
    """

    def __init__(self, handler: type, setup: object = None, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB, reader: str = "model reader"):
        self.handler, self.setup, self.reader = handler, setup, reader
        self.timeout, self.memory_gb = timeout, memory_gb
        self.lock = threading.Lock()  # one request at a time on the pipe
        self.closed = False  # for good: a call still in flight then starts no other worker
        self._life = threading.Lock()  # a closing and a replacing thread take turns
        self.starts = 0
        self.scratch = None
        self._start()

    def call(self, *request):
        with self.lock:
            try:
                self.connection.send(request)
                if not self.connection.poll(self.timeout):
                    self._replace()
                    hint = " (--timeout sets the limit)" if self.reader == "model reader" else ""
                    raise ModelError(f"no answer in {self.timeout:g} s: the file makes its "
                                     f"reader hang{hint}")
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
        os.close(self.log)
        self.log = None
        scratch.remove_scratch(self.scratch)  # what the file unpacked, however it ended

    def _start(self) -> None:
        self.starts += 1
        context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self.log, log_path = tempfile.mkstemp(prefix="mnistkit-worker-", suffix=".log")
        self.scratch = scratch.make_scratch()
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve, daemon=True,
            args=(child, self.handler, self.setup, self.memory_gb, self.reader, log_path,
                  os.getpid(), self.scratch))
        try:
            _start_in_spawner_thread(self.process)
            started = self._await("started")
        finally:
            child.close()
            # The worker has the log open (or never will): nothing is left on disk, however
            # this process ends.
            os.unlink(log_path)
        if not (started and self._await("ready")):
            self.process.kill()
            self.process.join()
            last = (self._log_tail().splitlines() or [f"exit status {self.process.exitcode}"])
            os.close(self.log)
            self.log = None
            scratch.remove_scratch(self.scratch)
            raise ModelError(f"the {self.reader} process did not start ({last[-1]})")

    def _await(self, word: str) -> bool:
        try:
            return self.connection.poll(STARTUP_SECONDS) and self.connection.recv() == word
        except (EOFError, OSError):  # it died starting: too little memory for the backend
            return False

    def _replace(self) -> None:
        with self._life:
            self._stop()
            if self.closed:
                raise ModelError(f"the {self.reader} was closed")
            self._start()

    def _why_it_died(self) -> str:
        self.process.join(5)
        code, log = self.process.exitcode, self._log_tail()
        if any(hint in log for hint in MEMORY_HINTS) or code == -signal.SIGKILL:
            return _out_of_memory(self.memory_gb, self.reader)
        if code is not None and -code in _SIGNALS:
            return f"crashed the {self.reader} ({_SIGNALS[-code]}): the file is damaged"
        return f"the {self.reader} stopped (exit status {code}): the file is damaged"

    def _log_tail(self) -> str:
        if self.log is None:
            return ""
        try:
            size = os.fstat(self.log).st_size
            return os.pread(self.log, 2000, max(0, size - 2000)).decode(errors="replace").strip()
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


def _die_with_parent(parent: int) -> None:
    """Ask Linux for SIGKILL when the parent is gone; if it is already gone, go now."""
    # Not on Linux: the pipe's end still stops an idle worker.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _serve(connection, handler: Callable, setup: object, memory_gb: float, reader: str,
           log: str, parent: int, folder) -> None:
    """The worker: limit its memory, load the backend, then answer requests until closed."""
    import resource

    _die_with_parent(parent)
    scratch.use_scratch(folder)  # before any library reads where temporary files go
    # Workers compute on the CPU: CUDA maps far more address space than the limit that
    # contains a hostile file, and a GPU would be shared with training. Scoring all of
    # MNIST's test set takes a second or two on a CPU.
    os.environ.update(CUDA_VISIBLE_DEVICES="-1", JAX_PLATFORMS="cpu")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with open(log, "ab") as stream:
        os.dup2(stream.fileno(), 2)
    connection.send("started")
    tasks = handler(setup)  # the backend loaded, before anything a file brings
    # The limit is what the backend itself maps, plus the budget: that differs by machine
    # (where CUDA is installed, its libraries map gigabytes, used or not).
    limit = _address_space() + int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    connection.send("ready")
    while True:
        try:
            kind, *arguments = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", getattr(tasks, kind)(*arguments)))
        except MemoryError:
            _exit_out_of_memory(connection, memory_gb, reader)
            return
        except ModelError as error:
            if any(hint in str(error) for hint in MEMORY_HINTS):  # TensorFlow's OOM, reworded
                _exit_out_of_memory(connection, memory_gb, reader)
                return
            connection.send(("error", str(error)))
        except Exception as error:  # noqa: BLE001 - any other failure is the file's reason
            if any(hint in f"{type(error).__name__} {error}" for hint in MEMORY_HINTS):
                _exit_out_of_memory(connection, memory_gb, reader)
                return
            connection.send(("error", f"failed to run: {reason(error)}"))


def _address_space() -> int:
    """Bytes of address space this process maps now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _out_of_memory(memory_gb: float, reader: str) -> str:
    return f"needed more than the {memory_gb:g} GB of memory a {reader.split()[0]} may use"


def _exit_out_of_memory(connection, memory_gb: float, reader: str) -> None:
    """Say why, then end: after a failed allocation the backend's allocators may hold what
    they got, and the next file's row would fail too (the parent starts a fresh worker)."""
    connection.send(("fatal", _out_of_memory(memory_gb, reader)))
