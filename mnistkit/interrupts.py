"""Ctrl-C, SIGTERM and SIGHUP: one line and an exit status instead of a traceback, after the
``finally`` blocks that remove staged files have run, and never between two renames that
belong together.

Python turns Ctrl-C into KeyboardInterrupt; :func:`stop_on_signals` turns SIGTERM (``kill``,
a service manager) and SIGHUP (a closed terminal) into :class:`Terminated` the same way. Both
are raised in the main thread, where the scripts wait on their workers. Nothing imported
here loads NumPy or a backend.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

# Windows has no SIGHUP: closing its console ends the process without a signal to catch.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                    if hasattr(signal, name))
STOPPING = (signal.SIGINT, *TERMINATING)


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived; raised in the main thread so that cleanup runs."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Raise :class:`Terminated` on SIGTERM and SIGHUP from now on; a signal the process was
    told to ignore (``nohup`` ignores SIGHUP) stays ignored."""
    for signum in TERMINATING:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _raise_terminated)


def stopped(stop: BaseException) -> tuple[str, int]:
    """The word for a KeyboardInterrupt or :class:`Terminated`, and the exit status a shell
    gives a process that a signal ended: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    if isinstance(stop, Terminated):
        return "terminated", 128 + stop.signum
    return "interrupted", 128 + signal.SIGINT


def run_main(main: Callable[[], int], after: str) -> int:
    """``main()``'s exit status; Ctrl-C, SIGTERM or SIGHUP end it with one line, the word
    (:func:`stopped`) and ``after``, e.g. "interrupted: export stopped; ...", once its
    ``finally`` blocks have removed what they staged."""
    stop_on_signals()
    try:
        return main()
    except (KeyboardInterrupt, Terminated) as stop:
        word, status = stopped(stop)
        print(f"{word}: {after}", file=sys.stderr, flush=True)
        return status


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then act on the first that came:
    renames that belong together all happen, or none. Only the main thread can hold them
    (Python runs signal handlers there); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    saved = {}
    for signum in STOPPING:
        handler = signal.getsignal(signum)
        if handler not in (signal.SIG_IGN, None):  # None: set outside Python, kept as is
            saved[signum] = signal.signal(signum, lambda number, _: came.append(number))
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        if came:
            signal.raise_signal(came[0])


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)
