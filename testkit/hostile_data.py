"""Hostile --data: forged npz headers, gzip bombs of IDX files, missing keys, FIFOs, empty
folders, for training and for evaluate.py. Part of the sweep of testkit.hostile."""

from __future__ import annotations

import os
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np

from testkit.hostile import (
    Kit,
    Result,
    judge,
    run,
    write_file,
)


# --- data
def hostile_data(kit: Kit, folder: Path, quick: bool) -> list[Path]:
    def npz(name: str, shapes: dict) -> Path:
        """An npz whose members' headers claim ``shapes``: over as many zero bytes as they
        need, up to 8 MB, else over 1,000 bytes."""
        path = folder / name
        with zipfile.ZipFile(path, "w") as archive:
            for key, (shape, dtype) in shapes.items():
                header = {"descr": np.dtype(dtype).str, "fortran_order": False,
                          "shape": shape}
                size = int(np.prod(shape)) * np.dtype(dtype).itemsize
                stream = _npy_header(header) + bytes(size if 0 <= size <= 2**23 else 1000)
                archive.writestr(f"{key}.npy", stream)
        return path

    proper = {"x_train": ((2000, 28, 28), "u1"), "y_train": ((2000,), "u1"),
              "x_test": ((500, 28, 28), "u1"), "y_test": ((500,), "u1")}
    made = [
        npz("huge-header.npz", {**proper, "x_train": ((5_000_000, 28, 28), "u1")}),
        npz("missing-keys.npz", {"x_train": proper["x_train"]}),
        _idx_bomb(folder / "gzip-bomb", 1_000_000),
        folder / "fifo.npz",
        folder / "empty-folder",
    ]
    os.mkfifo(made[3])
    made[4].mkdir()
    if quick:
        return made
    made += [
        npz("claims-300k.npz", {**proper, "x_train": ((299_000, 28, 28), "u1")}),
        npz("object-dtype.npz", {**proper, "y_train": ((2000,), "O")}),
        npz("float-images.npz", {**proper, "x_test": ((500, 28, 28), "<f8")}),
        npz("negative-shape.npz", {**proper, "x_train": ((-1, 28, 28), "u1")}),
        _idx_bomb(folder / "gzip-bomb-290k", 290_000),
        write_file(folder / "not-a-zip.npz", b"PK\x03\x04" + bytes(100)),
        write_file(folder / "empty.npz", b""),
        Path("/dev/zero"),
        folder / "missing",
    ]
    labels = folder / "labels-out-of-range.npz"
    mnist = np.load(kit.data)
    np.savez(labels, **{**{k: mnist[k] for k in mnist.files},
                        "y_train": np.full(2000, 200, np.uint8)})
    made.append(labels)
    locked = folder / "locked"
    locked.mkdir()
    shutil.copy(kit.data, locked / "mnist.npz")
    locked.chmod(0)
    made.append(locked)
    return made


def _npy_header(header: dict) -> bytes:
    text = repr(header).encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _idx_bomb(folder: Path, count: int) -> Path:
    """A folder of the four IDX files whose training images are ``count`` gzipped zeros."""
    folder.mkdir()
    parts = {"train-images-idx3-ubyte.gz": (3, (count, 28, 28)),
             "train-labels-idx1-ubyte.gz": (1, (count,)),
             "t10k-images-idx3-ubyte.gz": (3, (10, 28, 28)),
             "t10k-labels-idx1-ubyte.gz": (1, (10,))}
    import gzip

    for name, (ndim, shape) in parts.items():
        with gzip.open(folder / name, "wb", compresslevel=9) as stream:
            stream.write(b"\0\0\x08" + bytes([ndim]) + struct.pack(f">{ndim}I", *shape))
            size, block = int(np.prod(shape)), bytes(2**22)
            while size > 0:
                stream.write(block[:min(size, len(block))])
                size -= len(block)
    return folder


def sweep_data(kit: Kit, paths: list[Path], kind: str, training: bool) -> list[Result]:
    results = []
    good = str(kit.models["logreg.h5"])
    for path in paths:
        commands = [("evaluate", ["evaluate.py", good, "--data", str(path)]),
                    ("predict", ["predict.py", "--model", good, "--test-index", "0",
                                 "--data", str(path)])]
        if training:
            commands.append(("train", ["train_logreg.py", "--epochs", "1", "--quiet",
                                       "--no-plot", "--data", str(path), "--output",
                                       str(kit.work / "trained" / "x.h5")]))
        for script, argv in commands:
            outcome, detail = judge(run(argv, kit.timeout), {}, {})
            results.append(Result(kind, f"{script} --data {path.name}", outcome, detail))
    return results
