"""The JSON record a training script writes beside each model, and finding model files.

A record comes from outside as much as a model does (a download, a folder someone shared),
so it is read bounded: a regular file only (never a FIFO or a device, which would block or
never end), at most ``MAX_RECORD_BYTES``, nested at most ``MAX_NESTING`` deep, a JSON object,
and each field used checked for its type where it is used. An unreadable record is a reason
in words, never an exception: the model's own row is still scored.
"""

from __future__ import annotations

from pathlib import Path

from mnistkit.files.bounded import read_json

MODELS_DIR = Path("models")  # where the training scripts save, and the other scripts look
# Keras' legacy HDF5 format, its own zip format, TensorFlow Lite and ONNX: the names the
# drawing page looks for in models/ (evaluate.py reads every entry, by its content)
MODEL_SUFFIXES = (".h5", ".keras", ".tflite", ".onnx")
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


def is_saved_model(path: Path) -> bool:
    """A TensorFlow SavedModel is a folder holding saved_model.pb (and its variables)."""
    return path.is_dir() and (path / "saved_model.pb").is_file()


def model_files(folder: str | Path) -> list[Path]:
    """The entries of ``folder`` named as models (any format's suffix, or SavedModel folders),
    sorted: also ones that are not regular files (a FIFO, a link), which get a row saying so.
    Not the checkpoints of runs under way, nor the hidden temporary files of saves under way.
    What the drawing page and ``best_model`` pick from."""
    return sorted(path for path in folder_entries(folder)
                  if path.suffix in MODEL_SUFFIXES or is_saved_model(path))


def folder_entries(folder: str | Path) -> list[Path]:
    """Every entry of ``folder`` that evaluate.py gives a row, sorted: all but hidden files
    (saves under way), checkpoints (``NAME.ckpt.*``) and the JSON and PNG records that the
    training scripts write beside a model of the same name. A file of unknown content gets
    a row saying what it is, so nothing is left out without a word."""
    entries = [path for path in Path(folder).iterdir()
               if not path.name.startswith(".") and ".ckpt." not in path.name]
    models = {path.stem for path in entries if path.suffix not in RECORD_SUFFIXES}
    return sorted(path for path in entries
                  if not (path.suffix in RECORD_SUFFIXES and path.stem in models))


def find_models(paths: list[Path]) -> list[Path]:
    """The paths named, each folder replaced by its entries (:func:`folder_entries`), except
    a SavedModel folder, which is a model; with none named, the entries of ``models/``. A
    path named that is not a folder stays, whatever it is, and gets its row."""
    if not paths:
        return folder_entries(MODELS_DIR) if MODELS_DIR.is_dir() else []
    found = []
    for path in paths:
        # A folder named like a model file (x.h5) is a row of its own, not a place to look.
        looked_into = (path.is_dir() and not is_saved_model(path)
                       and path.suffix not in MODEL_SUFFIXES)
        found.extend(folder_entries(path) if looked_into else [path])
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
