"""MNIST-C as its authors published it, for ``evaluate.py --corruptions PATH``.

Two sources: the ``mnist_c`` folder of the published archive (a subfolder per corruption
holding ``test_images.npy``, uint8 (10000, 28, 28, 1), and ``test_labels.npy``), or
``--corruptions tfds``: tensorflow-datasets' ``mnist_corrupted``, already downloaded, which
is written once into a folder of that same layout. Every file is checked on every read (a
regular file of a bounded size, uint8 images of MNIST's test shape in C order, labels equal
to MNIST's test labels, so image i is test image i), in the parent and again in each worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mnistkit.files.data import DataError, Mnist
from mnistkit.files.places import cache_folder
from mnistkit.prepare.corruptions import CORRUPTIONS, VERSION

TFDS = "tfds"  # the --corruptions value that reads tensorflow-datasets' copy
NPY_HEADER_MAX = 4096  # np.save writes 128 bytes; more means a foreign file


def is_published(value: str) -> bool:
    """Whether a --corruptions value names a published set (``tfds``, or a folder with a
    subfolder per corruption), rather than a model file given after the flag."""
    folder = Path(value)
    return value == TFDS or (folder.is_dir() and any((folder / name).is_dir()
                                                     for name in CORRUPTIONS))


def published_sets(folder: str | Path, labels: np.ndarray) -> dict[str, np.ndarray]:
    """{corruption: uint8 images (n, 28, 28)} read from the ``mnist_c`` ``folder``,
    memory-mapped; DataError (naming the file) unless each passes the checks."""
    return {name: _read_set(Path(folder) / name, labels) for name in CORRUPTIONS}


def _read_set(folder: Path, labels: np.ndarray) -> np.ndarray:
    count = len(labels)
    images = _load(folder / "test_images.npy", count * 28 * 28)
    if images.dtype != np.uint8 or images.shape not in ((count, 28, 28), (count, 28, 28, 1)):
        raise DataError(f"{folder / 'test_images.npy'}: holds {images.dtype} "
                        f"{images.shape}, not uint8 ({count}, 28, 28, 1)")
    found = _load(folder / "test_labels.npy", count * 8)
    if (found.shape != (count,) or found.dtype.kind not in "iu"
            or not np.array_equal(found, labels)):
        raise DataError(f"{folder / 'test_labels.npy'}: not MNIST's {count:,} test labels "
                        "in order")
    return images.reshape(count, 28, 28)


def _load(path: Path, most: int) -> np.ndarray:
    """An .npy file of at most ``most`` bytes of data, memory-mapped, never unpickled."""
    try:
        if path.is_symlink() or not path.is_file():
            raise DataError(f"{path}: missing, or not a regular file (MNIST-C's layout: "
                            "mnist_c/<corruption>/test_images.npy and test_labels.npy)")
        if os.stat(path).st_size > most + NPY_HEADER_MAX:
            raise DataError(f"{path}: larger than MNIST-C's test set")
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:  # unreadable, or not an .npy file
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    if not data.flags.c_contiguous:  # fortran_order: the same bytes read as other images
        raise DataError(f"{path}: not in C order")
    return data


def published_mnist(mnist: Mnist, value: str) -> Mnist:
    """MNIST with the published corrupted sets named by ``value`` (a folder, or ``tfds``),
    checked here first, so that a bad file stops the run before any model is loaded."""
    if value == TFDS:
        folder = from_tfds(mnist, cache_folder() / "mnist-c-tfds")
    else:
        folder = Path(value).resolve()
        published_sets(folder, mnist.test_labels)
    return dataclasses.replace(mnist, corrupted=str(folder))


def from_tfds(mnist: Mnist, into: Path) -> Path:
    """tensorflow-datasets' ``mnist_corrupted`` (prepared beforehand, never downloaded
    here) written into ``into`` in MNIST-C's layout, in MNIST's test order; reused when it
    is already there and passes the checks."""
    with contextlib.suppress(DataError):
        published_sets(into, mnist.test_labels)
        return into
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("--corruptions tfds: tensorflow-datasets is not installed (pip "
                        "install tensorflow-datasets), or give the mnist_c folder") from None
    # tensorflow-datasets stores the test split in an order of its own, the same for
    # each corruption: the uncorrupted copy ("identity") tells which MNIST image is which.
    order = _mnist_order(_tfds_test(tfds, "identity")[0], mnist.test_images)
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="mnist-c-tfds-", dir=into.parent))
    try:
        for name in CORRUPTIONS:
            images, labels = _tfds_test(tfds, name)
            (staging / name).mkdir()
            np.save(staging / name / "test_images.npy", images[order].astype(np.uint8))
            np.save(staging / name / "test_labels.npy", labels[order].astype(np.int64))
        shutil.rmtree(into, ignore_errors=True)
        os.replace(staging, into)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    published_sets(into, mnist.test_labels)  # the labels must now be MNIST's, in order
    return into


def _tfds_test(tfds, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        images, labels = tfds.as_numpy(tfds.load(f"mnist_corrupted/{name}", split="test",
                                                 batch_size=-1, as_supervised=True,
                                                 download=False))
    except Exception as error:  # not prepared, or a broken copy: one line, not a trace
        raise DataError(f"--corruptions tfds: cannot read mnist_corrupted/{name}: "
                        f"{str(error).splitlines()[0] if str(error) else error!r}") from None
    return np.asarray(images).reshape(-1, 28, 28), np.asarray(labels)


def _mnist_order(found: np.ndarray, test_images: np.ndarray) -> np.ndarray:
    """The index into ``found`` of each MNIST test image, matched by content."""
    where: dict[bytes, list[int]] = {}
    for index, image in enumerate(found):
        where.setdefault(image.tobytes(), []).append(index)
    try:
        return np.array([where[image.tobytes()].pop() for image in test_images])
    except (KeyError, IndexError):
        raise DataError("--corruptions tfds: mnist_corrupted/identity is not MNIST's test "
                        "set") from None


def describe(path: str | None) -> dict | None:
    """Which corrupted sets a run scored on, for the printed summary and --json."""
    if not path:
        return None
    if Path(path).is_dir():
        return {"set": "published", "source": str(path)}
    return {"set": "regenerated", "source": str(path), "version": VERSION}
