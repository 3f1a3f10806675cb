"""The worker process's own side: it dies with its parent, limits its memory, makes its
tasks, then answers requests until the pipe closes (``mnistkit.workers.process`` is the
parent's side).

Each answer is ``("ok", value)``, ``("error", type name, message)`` for an exception the
tasks declare (``mnistkit.workers.tasks``), or ``("fatal", message)`` when the worker ran out
of memory: it says why and ends, and the parent starts a fresh one.
"""

from __future__ import annotations

import os
import signal

from mnistkit import system
from mnistkit.files import scratch
from mnistkit.workers.tasks import Tasks, error_words

MEMORY_HINTS = ("bad_alloc", "MemoryError", "Resource exhausted", "out of memory",
                "Cannot allocate memory", "OOM")
READY, READY_UNLIMITED = "ready", "ready, unlimited"  # the second: the parent must limit it


def serve(connection, tasks_class: type[Tasks], setup: object, memory_gb: float, reader: str,
          log: str, parent: int, folder) -> None:
    """The worker: limit its memory, make its tasks (the backend loaded), then answer
    requests until closed."""
    system.end_with_parent(parent)
    scratch.use_scratch(folder)  # before any library reads where temporary files go
    # Workers compute on the CPU: CUDA maps far more address space than the limit that
    # contains a hostile file, and a GPU would be shared with training. Scoring all of
    # MNIST's test set takes a second or two on a CPU.
    os.environ.update(CUDA_VISIBLE_DEVICES="-1", JAX_PLATFORMS="cpu")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with open(log, "ab") as stream:
        os.dup2(stream.fileno(), 2)
    connection.send("started")
    tasks = tasks_class(setup)  # the backend loaded, before anything a file brings
    # The limit is what the backend itself maps, plus the budget: that differs by machine
    # (where CUDA is installed, its libraries map gigabytes, used or not).
    limited = system.limit_own_memory(int(memory_gb * 2**30))
    connection.send(READY if limited else READY_UNLIMITED)
    while True:
        try:
            name, arguments, keywords = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", getattr(tasks, name)(*arguments, **keywords)))
        except Exception as error:  # noqa: BLE001 - every failure is the request's answer
            if isinstance(error, MemoryError) or any(
                    hint in f"{type(error).__name__} {error}" for hint in MEMORY_HINTS):
                # After a failed allocation the backend's allocators may hold what they
                # got, and the next request would fail too: say why, then end.
                connection.send(("fatal", out_of_memory(memory_gb, reader)))
                return
            connection.send(("error", *error_words(tasks_class, error)))


def out_of_memory(memory_gb: float, reader: str) -> str:
    """Why a worker that ran out of memory gave no answer."""
    return f"needed more than the {memory_gb:g} GB of memory a {reader.split()[0]} may use"

