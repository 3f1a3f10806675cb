"""The corrupted test sets, built once (a minute on 2 cores) and cached as one .npy file in
the user's cache folder, its content digest in a JSON file beside it; checked on every read,
rebuilt when it does not match. And the sets a run scores on: the cache, or the published
folder (``--corruptions PATH``)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnistkit.files.bounded import read_json
from mnistkit.files.data import Mnist
from mnistkit.files.places import cache_folder
from mnistkit.files.saving import write_json
from mnistkit.prepare.corruptions import CORRUPTIONS, VERSION, build_all

_NPY_HEADER_MAX = 4096  # np.save writes a header of 128 bytes; more means a foreign file
TEMPORARY = ".npy.tmp"  # the suffix of a cache being written
STALE_SECONDS = 600  # a temporary this old is a killed writer's: a save takes seconds


def cached_corruptions(images: np.ndarray,
                       progress: Callable[[int, str | None], None] | None = None
                       ) -> tuple[Path, bool]:
    """The cache file of ``images``' corrupted sets, and whether it had to be built now
    (``progress`` hears how the build goes: ``corruptions.build_all``). The name holds a
    digest of the images and VERSION, a JSON file beside it the digest of its content; a
    file that fails the checks of :func:`open_cached` is rebuilt."""
    digest = hashlib.sha256(f"{VERSION} {images.shape}".encode() + images.tobytes())
    path = cache_folder() / f"mnist-c-v{VERSION}-{digest.hexdigest()[:16]}.npy"
    _remove_stale_temporaries(path.parent)
    with contextlib.suppress(ValueError, OSError):
        open_cached(str(path), len(images))
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    built = build_all(images, progress)
    # Written aside, then renamed: a run that dies midway leaves no half file behind.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix="mnist-c-", suffix=TEMPORARY)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, built)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    # The digest last: a run stopped before it leaves a cache that the next run rebuilds.
    write_json(_description(built.shape, hashlib.sha256(built).hexdigest()),
               path.with_suffix(".json"))
    return path, True


def _description(shape: tuple[int, ...], sha256: str) -> dict:
    return {"version": VERSION, "shape": list(shape), "dtype": "uint8", "sha256": sha256}


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files of writers killed mid-save (75 MB each); a live writer's
    file is seconds old."""
    with contextlib.suppress(OSError):
        for stale in folder.glob(f"*{TEMPORARY}"):
            with contextlib.suppress(OSError):
                if time.time() - stale.lstat().st_mtime > STALE_SECONDS:
                    stale.unlink()


@functools.lru_cache(maxsize=2)
def open_cached(path: str, count: int) -> np.ndarray:
    """The cached sets, memory-mapped; ValueError unless the file is a regular file of the
    right size holding uint8 of shape (15, count, 28, 28) in C order, whose bytes have the
    digest that the JSON file beside it recorded when it was written."""
    shape = (len(CORRUPTIONS), count, 28, 28)
    expected = int(np.prod(shape))
    size = os.stat(path).st_size  # checked before reading: a huge or tiny file is refused
    if not Path(path).is_file() or not expected < size <= expected + _NPY_HEADER_MAX:
        raise ValueError(f"{path}: not a cache of corrupted test sets")
    data = np.load(path, mmap_mode="r", allow_pickle=False)
    if data.shape != shape or data.dtype != np.uint8:
        raise ValueError(f"{path}: holds {data.dtype} {data.shape}, not uint8 {shape}")
    if not data.flags.c_contiguous:  # fortran_order: the same bytes read as other images
        raise ValueError(f"{path}: not in C order")
    recorded = read_json(Path(path).with_suffix(".json"), 4096, 4)
    if recorded != _description(shape, hashlib.sha256(data).hexdigest()):
        raise ValueError(f"{path}: its content is not what was written")
    return data


def corrupted_sets(mnist: Mnist | None) -> dict[str, np.ndarray] | None:
    """{corruption: uint8 test images} when ``mnist`` carries a cache path (or the folder
    of the published set), else None."""
    path = getattr(mnist, "corrupted", None)
    if not path:
        return None
    if os.path.isdir(path):  # MNIST-C as published (--corruptions PATH), checked again
        from mnistkit.prepare.published_mnist_c import published_sets

        return published_sets(path, mnist.test_labels)
    data = open_cached(path, len(mnist.test_images))
    return {name: data[index] for index, name in enumerate(CORRUPTIONS)}
