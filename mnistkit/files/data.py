"""MNIST from Keras' download cache, a folder of IDX files or a Keras-style ``mnist.npz``.

Everything read is checked before it is trusted: a forged header cannot make the loader
allocate more than the file really holds, and every problem is one ``DataError`` line
that names the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "MNIST_DATA"
IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
# The real sets have 60,000 and 10,000 images (MNIST-like sets up to 240,000): a header
# claiming far more is forged, and must not make the loader read hundreds of megabytes.
MAX_IMAGES = 300_000
_IDX_UINT8 = 0x08
_CHUNK = 1 << 20


class DataError(Exception):
    """MNIST could not be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Mnist:
    """Raw MNIST: uint8 images of shape (n, 28, 28) and uint8 labels of shape (n,); with
    ``--corruptions``, where its corrupted test sets are (a cache file, or the published
    folder), for the scoring workers to read them there rather than through their pipe."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    corrupted: str | None = None

    def subset(self, train: int, test: int) -> Mnist:
        """The first ``train`` training and ``test`` test examples (for quick tests)."""
        return Mnist(self.train_images[:train], self.train_labels[:train],
                     self.test_images[:test], self.test_labels[:test], self.source)


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    """Load MNIST from ``path`` (or ``$MNIST_DATA``), else through Keras' downloader.

    ``path`` is a folder with the four IDX files (gzipped or not), a folder holding
    ``mnist.npz``, or an ``.npz`` file with ``x_train, y_train, x_test, y_test``.
    """
    path = path or os.environ.get(DATA_ENV) or None
    try:
        return _load(path)
    except OSError as error:  # unreadable folders and files: say which, in one line
        where = error.filename or path or keras_cache()
        raise DataError(f"{where}: cannot be read ({error.strerror or error})") from None


def _load(path: str | os.PathLike | None) -> Mnist:
    if path is None:
        cached = keras_cache()
        return _load_npz(cached) if cached.is_file() else _load_with_keras()
    path = Path(path).expanduser()
    if path.is_file():
        return _load_npz(path)
    if path.exists() and not path.is_dir():  # reading a FIFO or a device never ends
        raise DataError(f"{path}: not a regular file or folder (expected MNIST IDX files or "
                        "mnist.npz)")
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder (expected MNIST IDX files or mnist.npz)")
    if (path / "mnist.npz").is_file():
        return _load_npz(path / "mnist.npz")
    parts = [_read_idx(_find_idx(path, name), ndim)
             for name, ndim in (("train-images", 3), ("train-labels", 1),
                                ("t10k-images", 3), ("t10k-labels", 1))]
    return _checked(*parts, source=str(path))


def keras_cache() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps its download. Reading it directly
    spares the scripts that only orchestrate (evaluate.py) the import of TensorFlow."""
    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "datasets" / "mnist.npz"


def _load_with_keras() -> Mnist:
    from mnistkit import backend

    # Keras' downloader imports the backend: without its start-up log lines, which would
    # come before the one line that says the download failed.
    backend.load_backend_quietly()
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # urllib, ssl and socket errors all end here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"could not download MNIST ({reason}); with no network, point --data or "
            f"${DATA_ENV} at a folder with the four IDX files or at mnist.npz") from None
    return _checked(x_train, y_train, x_test, y_test, source="keras.datasets.mnist")


def _find_idx(folder: Path, name: str) -> Path:
    stem = name.replace("-images", "-images-idx3").replace("-labels", "-labels-idx1")
    dotted = stem.replace("-idx", ".idx")  # a common renaming: train-images.idx3-ubyte
    for candidate in (f"{stem}-ubyte", f"{dotted}-ubyte"):
        for suffix in ("", ".gz"):
            if (folder / (candidate + suffix)).is_file():
                return folder / (candidate + suffix)
    raise DataError(f"{folder}: missing {stem}-ubyte[.gz] (need the four MNIST IDX files "
                    "or mnist.npz in this folder)")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one IDX file of uint8 data with ``ndim`` dimensions, checking every field."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as stream:
            header = _read_exactly(stream, 4, path, "header")
            if header[:2] != b"\0\0":
                raise DataError(f"{path}: not an IDX file (bad magic number {header.hex()})")
            if header[2] != _IDX_UINT8:
                raise DataError(f"{path}: IDX data type 0x{header[2]:02x} is not uint8 (0x08)")
            if header[3] != ndim:
                raise DataError(f"{path}: has {header[3]} dimensions, expected {ndim}")
            dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, "header"))
            _check_dims(path, dims)
            size = int(np.prod(dims))
            data = _read_exactly(stream, size, path, f"data for shape {dims}")
            if stream.read(1):
                raise DataError(f"{path}: extra bytes after the {size} bytes of shape {dims}")
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _check_dims(path: Path, dims: tuple[int, ...]) -> None:
    if dims[0] > MAX_IMAGES:
        raise DataError(f"{path}: header claims {dims[0]:,} items, more than MNIST can have")
    if dims[1:] not in ((), (IMAGE_SIDE, IMAGE_SIDE)):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")


def _read_exactly(stream, size: int, path: Path, what: str) -> bytearray:
    """Read ``size`` bytes in chunks into one buffer, so memory grows only with what the
    file really has, and is never held twice."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_CHUNK, size - len(data)))
        if not chunk:
            raise DataError(f"{path}: truncated: {what} needs {size} bytes, "
                            f"file has {len(data)}")
        data += chunk
    return data


_NPZ_KEYS = {"x_train": 3, "y_train": 1, "x_test": 3, "y_test": 1}


def _load_npz(path: Path) -> Mnist:
    """Load a Keras-style mnist.npz without pickles and without trusting its headers."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(name).stem: name for name in archive.namelist()}
            arrays = {}
            for key, ndim in _NPZ_KEYS.items():
                if key not in members:
                    raise DataError(f"{path}: no array '{key}' (needs {', '.join(_NPZ_KEYS)})")
                with archive.open(members[key]) as member:
                    arrays[key] = _read_npy(member, path, key, ndim)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    return _checked(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                    source=str(path))


def _read_npy(member, path: Path, key: str, ndim: int) -> np.ndarray:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise DataError(f"{path}: '{key}' has unsupported .npy version {version}")
    # Labels are digits in any integer type (int64 is common); images are bytes, as in MNIST.
    labels = ndim == 1
    if dtype != np.uint8 and not (labels and dtype.kind in "iu" and not dtype.hasobject):
        expected = "integers" if labels else "uint8"
        raise DataError(f"{path}: '{key}' has dtype {dtype}, expected {expected}")
    if len(shape) != ndim:
        raise DataError(f"{path}: '{key}' has shape {shape}, expected {ndim} dimensions")
    _check_dims(Path(f"{path}[{key}]"), shape)
    data = _read_exactly(member, int(np.prod(shape)) * dtype.itemsize, Path(f"{path}[{key}]"),
                         f"shape {shape}")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def _checked(x_train, y_train, x_test, y_test, source: str) -> Mnist:
    for images, labels, split in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"{source}: {split} images are {images.dtype} {images.shape[1:]}, "
                            "expected uint8 28x28")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{source}: {len(images)} {split} images but {len(labels)} labels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{source}: {split} labels are {labels.dtype}, expected integers")
        if len(labels) == 0:
            raise DataError(f"{source}: the {split} set is empty")
        if labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise DataError(f"{source}: {split} labels range {labels.min()}..{labels.max()}, "
                            "expected 0-9")
    return Mnist(x_train, y_train.astype(np.uint8), x_test, y_test.astype(np.uint8), source)
