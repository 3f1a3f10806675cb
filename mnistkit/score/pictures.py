"""Pictures read by models: a picture's digits, and each model's answer for each digit.

predict.py and draw.py's page both read pictures here. A picture comes from outside, so it
is decoded and prepared in a worker process of its own (:class:`PictureReader`), with a time
and a memory limit: a decompression bomb or a JPEG that decodes for minutes costs its own
answer ("no answer in 10 s"), never the script or the server. The digits come back as MNIST
stores its images, uint8 (n, 28, 28); the models' workers scale them for each model.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit.files.bounded import read_bytes
from mnistkit.prepare.pictures import ImageError, picture_digits
from mnistkit.read.loading import ModelError
from mnistkit.workers.process import Worker
from mnistkit.workers.tasks import Tasks

MAX_PICTURE_BYTES = 32 * 1024 * 1024  # a phone's largest photo is ~15 MB
PICTURE_SECONDS = 10.0  # a 40-megapixel photo decodes in about one
PICTURE_MEMORY_GB = 1.5  # the worker's address space: Python, NumPy, Pillow and one picture


class PictureTasks(Tasks):
    """In the picture worker: bytes in, prepared digits out. No backend is loaded. ImageError
    crosses to the parent as itself."""

    failure = ImageError

    def digits(self, data: bytes, name: str) -> np.ndarray:
        return picture_digits(io.BytesIO(data), name=name)


class PictureReader:
    """A worker that turns picture files into digits, one picture at a time (thread-safe:
    concurrent uploads wait their turn, so decoding never takes more than one core and
    PICTURE_MEMORY_GB, whatever is uploaded)."""

    def __init__(self, timeout: float = PICTURE_SECONDS, memory_gb: float = PICTURE_MEMORY_GB):
        self.worker = Worker(PictureTasks, None, timeout, memory_gb, reader="picture reader")

    def digits(self, data: bytes, name: str) -> np.ndarray:
        """uint8 (n, 28, 28) digits of the picture ``data``; ImageError naming ``name``."""
        if not data:
            raise ImageError(f"{name}: empty (no picture)")
        try:
            return self.worker.call(PictureTasks.digits, data, name)
        except ImageError as error:  # the worker's own failures name no picture: this does
            message = str(error)
            raise ImageError(message if message.startswith(name) else f"{name}: {message}") \
                from None

    def close(self) -> None:
        self.worker.close()


def read_picture_file(path: Path) -> bytes:
    """A picture file's bytes: a regular file of at most MAX_PICTURE_BYTES (opening a FIFO
    never blocks); ImageError naming the file otherwise."""
    try:
        return read_bytes(path, MAX_PICTURE_BYTES)
    except FileNotFoundError:
        raise ImageError(f"{path}: not a readable image (no such file)") from None
    except (OSError, ValueError) as error:
        raise ImageError(f"{path}: {getattr(error, 'strerror', None) or error}") from None


@dataclass
class Answer:
    """One model's reading of a picture's digits: probabilities (n, 10), or why not."""

    path: str
    probabilities: np.ndarray | None = None
    error: str | None = None
    late: bool = False  # no answer within the request's deadline: left out, not failed


def read_digits(host, digits: np.ndarray, paths: list[str],
                deadline: float | None = None) -> list[Answer]:
    """Each model's answer for uint8 digits (n, 28, 28); the models, each in its worker of
    ``host`` (a ``ModelHost``), are asked all at once. With a ``deadline`` (seconds), the
    models that have not answered by then, or are still busy with an earlier request, get a
    late Answer: one slow model costs its own answer, not everyone's."""
    if deadline is not None:
        return _read_within(host, digits, paths, deadline)

    def ask(path: str) -> Answer:
        try:
            return Answer(path, probabilities=host.predict(path, digits))
        except ModelError as error:  # its worker died or hung; it is restarted for the next
            return Answer(path, error=str(error))

    with ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
        return list(pool.map(ask, paths))


def _read_within(host, digits: np.ndarray, paths: list[str], deadline: float) -> list[Answer]:
    futures = {path: host.predict_soon(path, digits) for path in paths}
    wait([future for future in futures.values() if future], timeout=deadline)
    answers = []
    for path, future in futures.items():
        if future is None:
            answers.append(Answer(path, error="still busy with an earlier drawing (slower "
                                  f"than {deadline:g} s); left out", late=True))
        elif not future.done():
            host.mark_late(path, future)
            answers.append(Answer(path, error=f"no answer within {deadline:g} s; left out",
                                  late=True))
        else:
            try:
                answers.append(Answer(path, probabilities=future.result()))
            except ModelError as error:  # its worker died or hung; restarted for the next
                answers.append(Answer(path, error=str(error)))
    return answers


def picture_answers(reader: PictureReader, host, data: bytes, name: str, paths: list[str],
                    deadline: float | None = None) -> tuple[np.ndarray, list[Answer]]:
    """A picture's digits (uint8, n x 28 x 28) and each model's answer for them (within
    ``deadline``, see :func:`read_digits`); ImageError when the picture cannot be read or
    holds no digit."""
    digits = reader.digits(data, name)
    return digits, read_digits(host, digits, paths, deadline)
