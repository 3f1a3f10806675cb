"""A process's own folder for temporary files, removed when the process is done with it.

TensorFlow's autograph writes a generated module per traced function, ONNX Runtime and Keras
unpack what they read, and none of them removes what it left when the process is killed or
ends through ``os._exit``. So each worker and each training run points ``TMPDIR`` at a folder
of its own, named with its process id: its parent (a worker's) or the run itself removes it,
and a folder whose process is gone (killed before it could) is removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from mnistkit import system

PREFIX = "mnistkit-scratch-"
_NAME = re.compile(rf"{PREFIX}(\d+)-")


def make_scratch() -> Path:
    """A new folder for this process's temporary files, in the system's temporary folder,
    after removing those of processes that are gone."""
    base = Path(tempfile.gettempdir())
    remove_orphans(base)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))


def use_scratch(folder: Path) -> None:
    """Send this process's temporary files, and those of the libraries it loads, to
    ``folder``."""
    os.environ["TMPDIR"] = os.environ["TEMP"] = os.environ["TMP"] = str(folder)
    tempfile.tempdir = str(folder)


def remove_scratch(folder: Path | None) -> None:
    if folder is not None:
        remove_tree(folder)


def remove_tree(folder: str | Path) -> None:
    """Remove a folder and all in it, as far as possible, however deep it nests (shutil's
    removal recurses once a level, and a file's unpacked members can nest thousands deep)."""
    try:
        shutil.rmtree(folder, ignore_errors=True)
        return
    except RecursionError:
        pass
    folders, pending = [], [str(folder)]
    while pending:
        current = pending.pop()
        folders.append(current)
        with contextlib.suppress(OSError):
            for entry in os.scandir(current):
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
    for current in reversed(folders):  # each folder after everything found below it
        with contextlib.suppress(OSError):
            os.rmdir(current)


def remove_orphans(base: Path) -> None:
    """Remove the scratch folders of processes that no longer run."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            found = _NAME.match(entry.name)
            if (found and entry.is_dir(follow_symlinks=False)
                    and not system.process_running(int(found[1]))):
                remove_tree(entry.path)
