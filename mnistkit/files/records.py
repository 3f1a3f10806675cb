"""The JSON record a training script writes beside each model, written elsewhere
(:mod:`mnistkit.train.run_record`) and read here, by every command that shows it.

A record comes from outside as much as a model does (a download, a folder someone shared),
so it is read bounded: a regular file only (never a FIFO or a device, which would block or
never end), at most ``MAX_RECORD_BYTES``, nested at most ``MAX_NESTING`` deep, a JSON object,
and each field used checked for its type where it is used. An unreadable record is a reason
in words, never an exception: the model's own row is still scored.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path

from mnistkit.files.bounded import read_json

RECORD_SUFFIXES = (".json", ".png")  # the run's record and curves beside each model
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
        record = read_json(path, MAX_RECORD_BYTES, MAX_NESTING)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as error:
        return None, f"{path.name}: {getattr(error, 'strerror', None) or error}"
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


def describe_training(record: dict | None) -> str:
    """The training settings in a few words, e.g. 'adam, 5 epochs, batch 128, val 0.2, 14.2 s'.
    Values of the wrong type are shown as they are, never formatted as numbers."""
    if not record or not isinstance(record.get("arguments"), dict):
        return ""
    arguments = record["arguments"]

    def shown(key: str, default: object = "?") -> str:
        return " ".join(str(arguments.get(key, default)).split())[:40]

    parts = [shown("optimizer")]
    rate = arguments.get("learning_rate")
    if isinstance(rate, Real) and not isinstance(rate, bool) and rate:
        parts[0] += f" lr {rate:g}"
    if arguments.get("schedule", "constant") != "constant":
        parts[0] += f" {shown('schedule')}"
    epochs = record.get("epochs_run", arguments.get("epochs", "?"))
    parts.append(f"{' '.join(str(epochs).split())[:20]} epochs")
    parts += [f"batch {shown('batch_size')}", f"val {shown('validation_split')}",
              f"seed {shown('seed')}"]
    seconds = record.get("train_seconds")
    if isinstance(seconds, Real) and not isinstance(seconds, bool):
        parts.append(f"{seconds:.1f} s")
    return ", ".join(parts)
