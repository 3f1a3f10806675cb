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
from pathlib import Path

from testkit.hostile import PYTHON, ROOT


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def _workers(pid: int) -> set[int]:
    """The worker processes of ``pid``: its children but multiprocessing's resource tracker."""
    found = set()
    for child in _children(pid):
        with contextlib.suppress(OSError):
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
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
