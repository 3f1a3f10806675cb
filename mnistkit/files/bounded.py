"""Reading a small file that came from outside without trusting it: a regular file only
(opening never blocks on a FIFO: ``mnistkit.system``; a device is refused), a bounded size,
and for JSON a bounded nesting depth, checked before parsing. Every problem is a ValueError
with the reason."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from mnistkit import system

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``. FileNotFoundError when there is
    none; ValueError (or another OSError) when it cannot be used."""
    descriptor = os.open(path, system.untrusted_open_flags())
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file (a FIFO, device or folder)")
        if info.st_size > max_bytes:
            raise ValueError(f"{info.st_size:,} bytes (at most {max_bytes:,})")
        chunks, size = [], 0
        while chunk := os.read(descriptor, max_bytes + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # it grew since fstat
                raise ValueError(f"more than {max_bytes:,} bytes")
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def read_json(path: str | Path, max_bytes: int, max_depth: int) -> object:
    """The JSON in a regular file of at most ``max_bytes``, nested at most ``max_depth``."""
    text = read_bytes(path, max_bytes).decode("utf-8")
    if (depth := nesting(text)) > max_depth:
        raise ValueError(f"nested {depth} deep (at most {max_depth})")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep") from None
    except ValueError as error:
        raise ValueError(f"not JSON ({error})") from None


def nesting(text: str) -> int:
    """How deep the JSON's brackets nest (outside strings), without parsing it."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


MAX_FOLDER_ENTRIES = 10_000  # a SavedModel holds a handful of files; its assets may add some


def walk(folder: str | Path, max_entries: int):
    """Every entry below ``folder``, links not followed, without recursion (a folder may nest
    deeper than Python's stack); ValueError past ``max_entries``."""
    pending, count = [Path(folder)], 0
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # unreadable or gone meanwhile: nothing below it is read either
            continue
        for entry in entries:
            count += 1
            if count > max_entries:
                raise ValueError(f"{folder}: more than {max_entries:,} entries; a model's "
                                 "folder holds a handful")
            path = Path(entry.path)
            yield path
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
