"""The JSON record a training script writes beside each model, and finding model files.

A record comes from outside as much as a model does (a download, a folder someone shared),
so it is read bounded: a regular file only (never a FIFO or a device, which would block or
never end), at most ``MAX_RECORD_BYTES``, nested at most ``MAX_NESTING`` deep, a JSON object,
and each field used checked for its type where it is used. An unreadable record is a reason
in words, never an exception: the model's own row is still scored.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

MODELS_DIR = Path("models")  # where the training scripts save, and the other scripts look
MODEL_SUFFIXES = (".h5", ".keras")  # Keras' legacy HDF5 format, and its own zip format
MAX_RECORD_BYTES = 1 << 20  # a 1,000-epoch record is ~100 KB
MAX_NESTING = 32  # records are four levels deep


def record_path(model_path: str | Path) -> Path:
    """The JSON record that goes beside a model: same folder, same stem."""
    return Path(model_path).with_suffix(".json")


def read_record(model_path: str | Path) -> tuple[dict | None, str | None]:
    """The record beside ``model_path`` and, when there is one that cannot be used, why:
    ``(record, None)``, ``(None, None)`` when there is none, ``(None, reason)``."""
    path = record_path(model_path)
    try:
        text = _read_bounded(path)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as error:
        return None, f"{path.name}: {getattr(error, 'strerror', None) or error}"
    if (depth := _nesting(text)) > MAX_NESTING:
        return None, f"{path.name}: nested {depth} deep (at most {MAX_NESTING})"
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as error:
        return None, f"{path.name}: not JSON ({error})"
    if not isinstance(record, dict):
        return None, f"{path.name}: not a JSON object"
    return record, None


def test_accuracy(record: dict | None) -> float | None:
    """``record["test"]["accuracy"]`` when it is a number in [0, 1], else None."""
    test = (record or {}).get("test")
    value = test.get("accuracy") if isinstance(test, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def model_files(folder: str | Path) -> list[Path]:
    """The entries of ``folder`` named as models, sorted: also ones that are not regular
    files (a folder, a FIFO, a link), which get a row saying so. Not the checkpoints of runs
    under way, nor the hidden temporary files of saves under way."""
    return sorted(path for path in Path(folder).iterdir()
                  if path.suffix in MODEL_SUFFIXES and not path.name.startswith(".")
                  and not path.name.endswith(".ckpt.keras"))


def find_models(paths: list[Path]) -> list[Path]:
    """The paths named, each folder replaced by the model files in it; with none named,
    the model files in ``models/``. A path named that is not a folder stays, whatever it is,
    and gets its row."""
    if not paths:
        return model_files(MODELS_DIR) if MODELS_DIR.is_dir() else []
    found = []
    for path in paths:
        found.extend(model_files(path) if path.is_dir() and path.suffix not in MODEL_SUFFIXES
                     else [path])
    return found


def best_model(folder: Path = MODELS_DIR) -> Path:
    """The model in ``folder`` whose record has the highest test accuracy;
    FileNotFoundError says what to do when there is none."""
    scored = [(accuracy, str(path), path)
              for path in (model_files(folder) if folder.is_dir() else [])
              if path.is_file() and (accuracy := test_accuracy(read_record(path)[0])) is not None]
    if not scored:
        raise FileNotFoundError(f"no trained models with records in {folder}/; train one "
                                "(python train_cnn.py) or pass --model")
    return max(scored)[2]


def _read_bounded(path: Path) -> str:
    """The text of a regular file of at most MAX_RECORD_BYTES; opening never blocks."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file (a FIFO, device or folder)")
        if info.st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{info.st_size:,} bytes (at most {MAX_RECORD_BYTES:,})")
        data = os.read(descriptor, MAX_RECORD_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_RECORD_BYTES:  # grew since fstat
        raise ValueError(f"more than {MAX_RECORD_BYTES:,} bytes")
    return data.decode("utf-8")


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def _nesting(text: str) -> int:
    """How deep the JSON's brackets nest (outside strings), without parsing it."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest
