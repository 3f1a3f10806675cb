"""Finding the model files a command names: a file is itself; a folder is its entries, except
a SavedModel folder, which is one model; nothing named is ``models/``.

A folder of models holds more than models: training logs, notes, pictures, TensorBoard's
folders, the external data an ONNX model keeps beside it. An entry named like a model, or
whose first bytes are a model format's, is a model: it gets a row, and when it cannot be read
its row says why. An entry that is plainly no model is skipped, with the reason, listed once
under the table. Told in this process from names and first bytes: no model file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mnistkit.files.records import RECORD_SUFFIXES
from mnistkit.read.errors import ModelError
from mnistkit.read.sniffing import detect_format

MODELS_DIR = Path("models")  # where the training scripts save, and the other scripts look
# Keras' legacy HDF5 format, its own zip format, TensorFlow Lite and ONNX: the names the
# drawing page looks for in models/ (evaluate.py reads every entry, by its content)
MODEL_SUFFIXES = (".h5", ".keras", ".tflite", ".onnx")
# Names that say "a model" in any of the formats read: such an entry always gets its row
MODEL_NAMES = (*MODEL_SUFFIXES, ".hdf5", ".pb", ".lite")
ONNX_DATA_SUFFIXES = (".data", "_data", ".bin", ".weights")  # beside X.onnx, as exporters name it


@dataclass
class Found:
    models: list[Path] = field(default_factory=list)  # each gets a row
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # plainly no model, and why


def is_saved_model(path: Path) -> bool:
    """A TensorFlow SavedModel is a folder holding saved_model.pb (and its variables)."""
    return path.is_dir() and (path / "saved_model.pb").is_file()


def find_models(paths: list[Path]) -> Found:
    """The models ``paths`` name (each folder's entries, but for a SavedModel folder; with
    none named, ``models/``'s), and the entries of the folders that are plainly no model. A
    path named that is not a folder is a model to try, whatever it is: it gets its row."""
    found = Found()
    if not paths:
        paths = [MODELS_DIR] if MODELS_DIR.is_dir() else []
    for path in paths:
        # A folder named like a model file (x.h5) is a row of its own, not a place to look.
        if not (_is_folder(path) and not is_saved_model(path)
                and path.suffix not in MODEL_SUFFIXES):
            found.models.append(path)
            continue
        entries = folder_entries(path)
        names = {entry.name for entry in entries}
        for entry in entries:
            why = not_a_model(entry, names)
            if why:
                found.skipped.append((entry, why))
            else:
                found.models.append(entry)
    return found


def not_a_model(path: Path, neighbours: set[str] = frozenset()) -> str | None:
    """Why an entry of a folder is plainly no model, or None when it may be one: named like a
    model, a SavedModel, or a file whose first bytes are a model format's (or unreadable: its
    row says why)."""
    if path.name.lower().endswith(MODEL_NAMES) or is_saved_model(path):
        return None
    owner = next((name for name in neighbours if name.lower().endswith(".onnx")
                  and path.name in _onnx_data_names(name)), None)
    if owner:
        return f"the external data of {owner}, read with it"
    if _is_folder(path):
        if any(inner.name.startswith("events.out.tfevents.") for inner in _shallow(path)):
            return "a folder of TensorBoard logs"
        return "a folder without saved_model.pb (not a SavedModel)"
    try:
        detect_format(path)
    except ModelError as error:
        reason = str(error)
        return reason.removeprefix("not a model file: ") if reason.startswith(
            "not a model file") else None
    return None


def _onnx_data_names(model: str) -> set[str]:
    stem = model[:-len(".onnx")]
    return {f"{base}{suffix}" for base in (model, stem) for suffix in ONNX_DATA_SUFFIXES}


def _shallow(folder: Path, limit: int = 200) -> list[Path]:
    """The folder's entries and those of its sub-folders (TensorBoard writes train/ and
    validation/), at most ``limit``."""
    seen: list[Path] = []
    try:
        for entry in folder.iterdir():
            seen.append(entry)
            if entry.is_dir() and not entry.is_symlink():
                seen += [inner for _, inner in zip(range(limit), entry.iterdir(), strict=False)]
            if len(seen) >= limit:
                break
    except OSError:
        pass
    return seen


def model_files(folder: str | Path) -> list[Path]:
    """The entries of ``folder`` named as models (any format's suffix, or SavedModel folders),
    sorted: also ones that are not regular files (a FIFO, a link), which get a row saying so.
    Not the checkpoints of runs under way, nor the hidden temporary files of saves under way.
    What the drawing page and ``best_model`` pick from."""
    return sorted(path for path in folder_entries(folder)
                  if path.suffix in MODEL_SUFFIXES or is_saved_model(path))


def folder_entries(folder: str | Path) -> list[Path]:
    """Every entry of ``folder`` but hidden files (saves under way), checkpoints
    (``NAME.ckpt.*``) and the JSON and PNG records that the training scripts write beside a
    model of the same name; sorted."""
    entries = [path for path in Path(folder).iterdir()
               if not path.name.startswith(".") and ".ckpt." not in path.name]
    models = {path.stem for path in entries if path.suffix not in RECORD_SUFFIXES}
    return sorted(path for path in entries
                  if not (path.suffix in RECORD_SUFFIXES and path.stem in models))


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, say: the path stays, and its row says why
        return False


def best_model(folder: Path = MODELS_DIR) -> Path:
    """The model in ``folder`` whose record has the highest test accuracy;
    FileNotFoundError says what to do when there is none."""
    from mnistkit.files.records import read_record, test_accuracy

    scored = [(accuracy, str(path), path)
              for path in (model_files(folder) if folder.is_dir() else [])
              if path.is_file() and (accuracy := test_accuracy(read_record(path)[0])) is not None]
    if not scored:
        raise FileNotFoundError(f"no trained models with records in {folder}/; train one "
                                "(python train_cnn.py) or pass --model")
    return max(scored)[2]
