"""The parent's side of a model worker: :class:`ModelReader`, one method for each of
:class:`~mnistkit.score.model_tasks.ModelTasks`' tasks, each run in the worker; and what is
plainly no model file, told here without one (:func:`refusal_from_first_bytes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.read.loading import ModelError
from mnistkit.read.sniffing import ZIP_SIGNATURE, detect_format
from mnistkit.score.evaluation import Row
from mnistkit.score.model_tasks import ModelTasks
from mnistkit.workers.process import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT, Worker


class ModelReader:
    """A worker process that reads model files (``tasks``: ModelTasks or a class derived from
    it). Each method runs the task of the same name in the worker and returns its answer;
    ModelError says why a file cannot be read, or why the worker failed (it died, hung or ran
    out of memory: a fresh worker then takes the next call, without the models loaded)."""

    def __init__(self, mnist: Mnist | None, timeout: float = DEFAULT_TIMEOUT,
                 memory_gb: float = DEFAULT_MEMORY_GB, tasks: type[ModelTasks] = ModelTasks,
                 reader: str = "model reader"):
        self.worker = Worker(tasks, mnist, timeout, memory_gb, reader)

    def about(self) -> dict:
        return self.worker.call(ModelTasks.about)

    def score(self, path: str, pixels: str, trust_code: bool,
              keep_probabilities: bool) -> tuple[Row, np.ndarray | None]:
        return self.worker.call(ModelTasks.score, path, pixels, trust_code, keep_probabilities)

    def load(self, path: str, pixels: str, trust_code: bool) -> tuple[str, int]:
        return self.worker.call(ModelTasks.load, path, pixels, trust_code)

    def predict(self, path: str, images: np.ndarray) -> np.ndarray:
        return self.worker.call(ModelTasks.predict, path, images)

    @property
    def starts(self) -> int:
        """How many workers this reader started: one more after each failure."""
        return self.worker.starts

    def close(self) -> None:
        self.worker.close()


def refusal_from_first_bytes(path: str | Path) -> str | None:
    """Why the entry at ``path`` is no model file, told by its first bytes without a worker
    (empty, text, a FIFO); None where only a worker can tell: a file like a model, one gone
    or unreadable, a zip (its directory, maybe huge, is read where memory is limited)."""
    path = Path(path)
    try:
        if not path.exists():
            return None
        if path.is_file():
            with open(path, "rb") as file:
                if file.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE:
                    return None
        detect_format(path)
    except ModelError as error:
        return str(error)
    except OSError:
        return None
    return None
