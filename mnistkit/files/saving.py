"""Write outputs whole or not at all: temporary files in the target's folder, then renames.

A crash, Ctrl-C or a second run writing the same path never leaves a half-written model,
and never replaces a good model by a broken one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from mnistkit.files.places import user_cache

NAME_MAX = 255  # bytes in one name, where the file system does not say (Linux, macOS)
PATH_MAX = 4096  # bytes in a whole path that the kernel takes (Linux)
TEMP_STEM = 32  # characters of the target's stem in a temporary name: room for the rest


def write_json(data: dict, path: str | Path) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    publish({path: lambda temp: dump_json(data, temp)})


def dump_json(data: dict, path: Path) -> None:
    """Write ``data`` as indented JSON to ``path`` (a writer for :func:`publish`)."""
    path.write_text(json.dumps(data, indent=2) + "\n")


class OutputError(OSError):
    """An output path that must not be written: the message names it and says why."""


def check_targets(paths: list[str | Path]) -> None:
    """Raise :class:`OutputError` unless every path can be written as a plain file: not a
    symbolic link, folder, device or FIFO (which a rename would replace or write into), and
    inside a folder that is, or can be made, writable. Nothing is written."""
    for path in map(Path, paths):
        check_name_lengths(path)
        if path.is_symlink():
            raise OutputError(f"{path}: is a symbolic link; refusing to replace it")
        if path.exists() and not path.is_file():
            kind = "folder" if path.is_dir() else "device, FIFO or socket"
            raise OutputError(f"{path}: is a {kind}, not a file; refusing to replace it")
        _check_parent(path)


def check_folder_target(path: str | Path) -> None:
    """Raise :class:`OutputError` unless ``path`` can be written as a SavedModel folder: not
    there yet, or a SavedModel folder (one holding ``saved_model.pb``), which is replaced; not
    a link, a file, or a folder of anything else. Nothing is written."""
    path = Path(path)
    check_name_lengths(path)
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; refusing to replace it")
    if path.exists() and not (path / "saved_model.pb").is_file():
        kind = "folder without saved_model.pb" if path.is_dir() else "file"
        raise OutputError(f"{path}: is a {kind}, not a SavedModel; refusing to replace it")
    _check_parent(path)


def check_name_lengths(path: str | Path) -> None:
    """Raise :class:`OutputError` when a name in ``path`` is longer than the file system
    holding it allows (where every later call would fail with ENAMETOOLONG)."""
    path = Path(path)
    limit = name_max(_existing_folder(path))
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise OutputError(f"{path}: name too long ({size} bytes in one name; this file "
                              f"system allows {limit})")
    if len(os.fsencode(path)) >= PATH_MAX:
        raise OutputError(f"{path}: path too long ({len(os.fsencode(path))} bytes)")


def name_max(folder: str | Path) -> int:
    """The longest name, in bytes, that ``folder``'s file system holds."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not said there; Windows has no pathconf
        return NAME_MAX


def _existing_folder(path: Path) -> Path:
    for parent in path.parents:
        with contextlib.suppress(OSError):  # a name too long is no folder either
            if parent.is_dir():
                return parent
    return Path(".")


def _check_parent(path: Path) -> None:
    folder = next((parent for parent in path.parents if parent.exists()), Path("."))
    if not folder.is_dir():
        raise OutputError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {folder} is not writable")


def check_folder(path: str | Path) -> None:
    """Raise :class:`OutputError` unless ``path`` is, or can be made, a writable folder."""
    path = Path(path)
    check_name_lengths(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is not a folder")
    existing = next(parent for parent in [path, *path.parents] if parent.exists())
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {existing} is not writable")


def publish(writers: dict[str | Path, Callable[[Path], object]]) -> None:
    """Write each target through a temporary file, then rename them all into place together.

    Each writer gets a temporary path with the target's suffix. The renames happen only
    after every writer succeeded, under a lock on the folder, so concurrent runs leave one
    run's complete set of files.
    """
    check_targets(list(writers))  # before anything is written: all or nothing
    temps: dict[Path, Path] = {}
    try:
        for target, writer in writers.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{target.stem[:TEMP_STEM]}.",
                                            suffix=f".tmp{target.suffix}", dir=target.parent)
            os.close(handle)
            temps[target] = Path(name)
            writer(temps[target])
            os.chmod(temps[target], 0o666 & ~_umask())  # mkstemp's 0600 would hide the file
        with _folder_lock(next(iter(temps)).parent):
            for target, temp in temps.items():
                os.replace(temp, target)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)


def move_into_place(staged: dict[Path, Path]) -> None:
    """Rename each staged file or folder (``{staged: target}``, all in the targets' folder)
    into place, together, under the folder's lock. A file replaces its target at once; a
    folder replaces its target by two renames (the old one moved aside, then deleted), so
    that the target is never a mix of two writes."""
    targets = list(staged.values())
    with _folder_lock(targets[0].parent):
        for source, target in staged.items():
            if not source.is_dir() or not target.exists():
                os.replace(source, target)
                continue
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                          dir=target.parent))
            try:
                os.replace(target, aside / target.name)
                try:
                    os.replace(source, target)
                except OSError:
                    os.replace(aside / target.name, target)  # the old one back
                    raise
            finally:
                shutil.rmtree(aside, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """The folder locked against other runs, and Ctrl-C, SIGTERM and SIGHUP held meanwhile:
    the renames in it all happen, or none."""
    from mnistkit.interrupts import signals_deferred

    with _lock_for(folder), signals_deferred():  # a signal while waiting: nothing renamed
        yield


@contextlib.contextmanager
def _lock_for(folder: Path) -> Iterator[None]:
    """The folder locked against other runs of this user, until the block ends or this
    process does. The lock's file lies in the user's cache, never in the folder (whose
    entries are the user's) nor in the temporary folder (each run points TMPDIR at its own)."""
    name = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:32]
    path = user_cache() / "locks" / f"{name}.lock"
    lock = filelock.FileLock(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError:  # no writable cache (a read-only home): the renames go unlocked
        yield
        return
    try:
        yield
    finally:
        lock.release()


def save_keras_model(model, path: Path) -> None:
    """``model.save`` for ``.h5`` (without optimizer state) or ``.keras``, minus Keras' nagging."""
    from absl import logging

    # Keras warns that .h5 is a legacy format on every save; .h5 is what users asked for.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        if path.suffix == ".h5":
            model.save(path, include_optimizer=False)
        else:
            model.save(path)
    finally:
        logging.set_verbosity(verbosity)
