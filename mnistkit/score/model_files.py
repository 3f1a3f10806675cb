"""evaluate.py's scoring of many model files: a row each, from one worker process.

- :func:`evaluate_files`: the rows with each model's training record, best first.
- :func:`score_files`: the rows alone, in the order given; one worker (a
  :class:`~mnistkit.score.model_reader.ModelReader`) imports the backend once and scores
  file after file, as fast as a run in one process.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from mnistkit.files.data import Mnist
from mnistkit.files.records import describe_training, read_record
from mnistkit.read.loading import ModelError
from mnistkit.score.comparing import ranked
from mnistkit.score.evaluation import Row
from mnistkit.score.model_reader import ModelReader, refusal_from_first_bytes
from mnistkit.score.model_tasks import ModelTasks
from mnistkit.workers.process import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT

MANY_FILES = 20  # from this many entries on, evaluate.py says first what it is about to do
PROGRESS_SECONDS = 10.0  # a longer scoring says how far it got, this often, on stderr


def evaluate_files(paths: list[Path], mnist: Mnist, trust_code: bool = False,
                   keep_probabilities: dict | None = None, pixels: str = "auto",
                   timeout: float = DEFAULT_TIMEOUT,
                   memory_gb: float = DEFAULT_MEMORY_GB) -> tuple[list[Row], dict]:
    """A row per file, best accuracy first and failures last; a bad file fails its row only,
    even one that crashes or hangs its reader: files are opened in a worker process.
    A record that cannot be read costs nothing but its settings: the row says why.

    With ``keep_probabilities`` (a dict), each evaluated file's test-set probabilities
    are stored in it under the file's path, for ensembles and reports. Also returns what
    the models ran on (device, versions).
    """
    records = [read_record(path) for path in paths]  # bounded: before minutes of scoring
    scored, about = score_files(paths, mnist, pixels=pixels, trust_code=trust_code,
                                keep_probabilities=keep_probabilities is not None,
                                timeout=timeout, memory_gb=memory_gb)
    rows = []
    for path, (row, probabilities), (record, record_error) in zip(paths, scored, records,
                                                                   strict=True):
        row.record, row.training = record, describe_training(record)
        if record_error:
            row.warning = "; ".join(filter(None, [row.warning,
                                                  f"record unreadable: {record_error}"]))
        if keep_probabilities is not None and probabilities is not None:
            keep_probabilities[str(path)] = probabilities
        rows.append(row)
    return ranked(rows), about


def score_files(paths: list[Path], mnist: Mnist, pixels: str = "auto", trust_code: bool = False,
                keep_probabilities: bool = False, timeout: float = DEFAULT_TIMEOUT,
                memory_gb: float = DEFAULT_MEMORY_GB,
                tasks: type[ModelTasks] = ModelTasks) -> tuple[list[tuple], dict]:
    """``evaluation.score_file`` for each file, in a worker: a (row, probabilities) pair each,
    and what the worker computed on (device, versions). Entries that are plainly no model
    (:func:`refusal_from_first_bytes`) get their row here and never reach the worker: each
    file costs the worker a clean-up of the backend's state, a fifth of a second. Progress
    goes to stderr."""
    results: list = [(Row(path=str(path), error=why), None)
                     if (why := refusal_from_first_bytes(path)) else None for path in paths]
    todo = [index for index, result in enumerate(results) if result is None]
    if len(paths) >= MANY_FILES:
        print(f"scoring {len(todo):,} model file{'s' * (len(todo) != 1)}" + (
              f" of {len(paths):,} entries; the other {len(paths) - len(todo):,} are not "
              "model files" if len(todo) < len(paths) else ""), file=sys.stderr, flush=True)
    about = {"device": "none", "versions": {}, "backend": None}
    if not todo:
        return results, about
    try:
        reader = ModelReader(mnist, timeout, memory_gb, tasks)
    except ModelError as error:  # every row says why: none could be opened
        for index in todo:
            results[index] = (Row(path=str(paths[index]), error=str(error)), None)
        return results, about
    about["device"] = "unknown"
    try:
        with contextlib.suppress(ModelError):  # only a description: the rows still come
            about = reader.about()
        said = time.monotonic()
        for done, index in enumerate(todo):
            try:
                results[index] = reader.score(str(paths[index]), pixels, trust_code,
                                              keep_probabilities)
            except ModelError as error:
                results[index] = (Row(path=str(paths[index]), error=str(error)), None)
            if time.monotonic() - said > PROGRESS_SECONDS and done + 1 < len(todo):
                print(f"scored {done + 1:,} of {len(todo):,} model files", file=sys.stderr,
                      flush=True)
                said = time.monotonic()
    finally:
        reader.close()
    return results, about
