"""The per-epoch checkpoint behind ``--resume``: a resumed run is the run that was started.

Beside ``models/NAME.h5`` it keeps ``models/NAME.ckpt.npz`` and ``models/NAME.ckpt.json``,
written together, whole, after every epoch, and removed once the model itself is saved.
The ``.npz`` holds every variable of the run: the model's weights and statistics, the state
of each random-number generator of its layers (dropout, augmentation) and the optimizer's
state (step count, moments). With the epoch's shuffle order derived from (seed, epoch), a
resumed run repeats, bit for bit, what the uninterrupted run would have computed.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from mnistkit.files.bounded import read_bytes, read_json
from mnistkit.files.saving import dump_json, publish
from mnistkit.train.config import TrainingConfig

# Settings that must not change between a run and its resumption.
_SAME_SETTINGS = ("run_name", "epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                  "validation_split", "seed", "precision", "distribute", "label_smoothing")
# What a setting added later meant for checkpoints written before it existed.
_SETTINGS_BEFORE_THEY_EXISTED = {"label_smoothing": 0.0}
MAX_STATE_BYTES = 4 << 20  # the run so far: a few KB, even for a thousand epochs
MAX_NESTING = 16
MAX_VARIABLES_BYTES = 2 << 30  # far above any MNIST model's variables and optimizer state
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
_STATE_TYPES = {"epoch": int, "history": dict, "epoch_seconds": list,
                "train_seconds": (int, float), "settings": dict}


class CheckpointError(Exception):
    """The checkpoint cannot be used to resume this run."""


class Checkpoint:
    def __init__(self, output: str | Path):
        stem = Path(output).with_suffix("")
        self.variables_path = stem.with_name(stem.name + ".ckpt.npz")
        self.state_path = stem.with_name(stem.name + ".ckpt.json")

    def exists(self) -> bool:
        return self.variables_path.exists() and self.state_path.exists()

    def start_or_resume(self, model, config) -> dict:
        """A fresh run's state; or with ``config.resume`` this checkpoint's, its values put
        into ``model`` (compiled: its optimizer's variables are overwritten too)."""
        if config.resume and self.exists():
            state = self.load_state(config)
            model.optimizer.build(model.trainable_variables)  # its variables, to overwrite
            self.restore(model, state)
            if not config.quiet:
                print(f"resuming from {self.variables_path} after epoch {state['epoch']}")
            return state
        if config.resume and not config.quiet:
            print(f"no checkpoint at {self.variables_path}; starting afresh")
        return {"epoch": 0, "history": {}, "epoch_seconds": [], "train_seconds": 0.0,
                "settings": Checkpoint.settings(config)}

    def save(self, model, state: dict) -> None:
        """Both halves, each naming the epoch; the state also holds the variables' checksum,
        so that halves of two different saves are never taken for a pair."""
        buffer = io.BytesIO()
        np.savez(buffer, epoch=np.int64(state["epoch"]),
                 **{f"v{index}": value for index, value in enumerate(_values(model))})
        variables = buffer.getvalue()
        paired = {**state, "variables_sha256": hashlib.sha256(variables).hexdigest()}
        publish({self.variables_path: lambda temp: temp.write_bytes(variables),
                 self.state_path: lambda temp: dump_json(paired, temp)})

    def load_state(self, config: TrainingConfig) -> dict:
        """The run so far, after checking it belongs to this command."""
        try:
            state = read_json(self.state_path, MAX_STATE_BYTES, MAX_NESTING)
        except (OSError, ValueError) as error:
            raise self._unusable(getattr(error, "strerror", None) or error) from None
        if why := _wrong_types(state):
            raise self._unusable(why)
        if not 0 < state["epoch"] <= config.epochs:
            raise self._unusable(f"epoch {state['epoch']} is not within 1..{config.epochs}")
        changed = ["--" + name.replace("_", "-") for name in _SAME_SETTINGS
                   if state["settings"].get(name, _SETTINGS_BEFORE_THEY_EXISTED.get(name))
                   != getattr(config, name)]
        if changed:
            raise CheckpointError(
                f"{self.state_path}: the checkpoint was made with other settings "
                f"({', '.join(changed)}); "
                "run the same command to resume, or drop --resume to start afresh")
        return state

    def restore(self, model, state: dict) -> None:
        """Put the saved values into ``model`` (built and compiled like the saved one), after
        checking that they are the pair of ``state`` and fit the model, before reading them."""
        targets = _variables(model)
        try:
            data = read_bytes(self.variables_path, MAX_VARIABLES_BYTES)
            if hashlib.sha256(data).hexdigest() != state.get("variables_sha256"):
                raise ValueError("its .npz is not the one its .json was saved with (a save cut "
                                 "short, or files of two runs)")
            values = _checked_values(data, [tuple(v.shape) for v in targets], state["epoch"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise self._unusable(getattr(error, "strerror", None) or error) from None
        for variable, value in zip(targets, values, strict=True):
            variable.assign(value)

    def remove(self) -> None:
        self.variables_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)

    def _unusable(self, why) -> CheckpointError:
        why = " ".join(str(why).split()) or type(why).__name__
        return CheckpointError(f"{self.state_path.with_suffix('')}: cannot resume from it "
                               f"({why}); delete it or run without --resume")

    @staticmethod
    def settings(config: TrainingConfig) -> dict:
        return {name: getattr(config, name) for name in _SAME_SETTINGS}


def _wrong_types(state: object) -> str | None:
    """Why the state cannot be the run so far, or None: each field of its type, the history
    lists of numbers, one per finished epoch."""
    wrong = [key for key, kind in _STATE_TYPES.items()
             if not isinstance(state, dict) or not isinstance(state.get(key), kind)
             or isinstance(state.get(key), bool)]
    if wrong:
        return f"{', '.join(wrong)} missing or of the wrong type"
    epochs = state["epoch"]
    series = {f"history.{key}": values for key, values in state["history"].items()}
    series["epoch_seconds"] = state["epoch_seconds"]
    for name, values in series.items():
        if not (isinstance(values, list) and len(values) == epochs
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)):
            return f"{name} is not {epochs} numbers, one per finished epoch"
    return None


def _checked_values(data: bytes, shapes: list[tuple], epoch: int) -> list[np.ndarray]:
    """The arrays of the .npz ``data``, once each member's header says it holds the epoch
    and an array of the shape the model needs: a forged header never allocates."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [f"v{index}.npy" for index in range(len(shapes))]
        if sorted(archive.namelist()) != sorted([*names, "epoch.npy"]):
            raise ValueError("its variables do not fit this model")
        for name, shape in [("epoch.npy", ()), *zip(names, shapes, strict=True)]:
            with archive.open(name) as member:
                read_header = _HEADER_READERS.get(np.lib.format.read_magic(member))
                if read_header is None:
                    raise ValueError(f"{name}: not a .npy array NumPy writes")
                found, _, dtype = read_header(member)
            if tuple(found) != shape or dtype.hasobject:
                raise ValueError("its variables do not fit this model")
    with np.load(io.BytesIO(data), allow_pickle=False) as saved:
        if int(saved["epoch"]) != epoch:
            raise ValueError(f"its .npz holds epoch {int(saved['epoch'])}, its .json epoch "
                             f"{epoch}")
        return [saved[name.removesuffix(".npy")] for name in names]


def _variables(model) -> list:
    """Everything that makes the run's state: model variables (weights, statistics, random
    generators' states) and the optimizer's, in an order fixed by the model's definition."""
    return [*model.variables, *model.optimizer.variables]


def _values(model) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(variable.value) for variable in _variables(model)]
