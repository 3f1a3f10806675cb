"""The processes a hostile case starts and watches, shared by the sweeps of killed scripts
(testkit.hostile_records), of waits (testkit.hostile_waits) and of slow models and signals
(testkit.hostile_slow): a process's children and workers, whether one is still alive, and
draw.py started and asked for the address it serves."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

from testkit.hostile import PYTHON, ROOT


def _children(pid: int) -> set[int]:
    try:
        return {child.pid for child in psutil.Process(pid).children()}
    except psutil.Error:
        return set()


def _alive(pid: int) -> bool:
    from mnistkit.system import process_running

    return process_running(pid)


def _workers(pid: int) -> set[int]:
    """The worker processes of ``pid``: its children but multiprocessing's resource tracker."""
    found = set()
    for child in _children(pid):
        with contextlib.suppress(psutil.Error):
            if not any("resource_tracker" in part for part in psutil.Process(child).cmdline()):
                found.add(child)
    return found


@contextlib.contextmanager
def _draw(argv: list[str], timeout: float):
    """draw.py started, and the address it serves (None if it never said one)."""
    process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               start_new_session=True)
    url, deadline = None, time.monotonic() + timeout
    try:
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline().decode(errors="replace")
            if "http://" in line:
                url = line[line.index("http://"):].split()[0]
        yield process, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def signals_as_in_a_terminal() -> None:
    """``preexec_fn`` for a process a test or the sweep signals: a shell that runs it in the
    background (``nohup ... &``) starts it with SIGINT and SIGHUP ignored, children inherit
    that, and the scripts rightly keep a signal they were told to ignore."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
