"""The per-epoch checkpoint behind ``--resume``: a resumed run is the run that was started.

Beside ``models/NAME.h5`` it keeps ``models/NAME.ckpt.npz`` and ``models/NAME.ckpt.json``,
written together, whole, after every epoch, and removed once the model itself is saved.
The ``.npz`` holds every variable of the run: the model's weights and statistics, the state
of each random-number generator of its layers (dropout, augmentation) and the optimizer's
state (step count, moments). With the epoch's shuffle order derived from (seed, epoch), a
resumed run repeats, bit for bit, what the uninterrupted run would have computed.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from mnistkit.files.saving import dump_json, publish
from mnistkit.train.config import TrainingConfig

# Settings that must not change between a run and its resumption.
_SAME_SETTINGS = ("run_name", "epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                  "validation_split", "seed", "precision", "distribute", "label_smoothing")
# What a setting added later meant for checkpoints written before it existed.
_SETTINGS_BEFORE_THEY_EXISTED = {"label_smoothing": 0.0}
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

    def save(self, model, state: dict) -> None:
        arrays = {f"v{index}": value for index, value in enumerate(_values(model))}
        publish({self.variables_path: lambda temp: np.savez(temp, **arrays),
                 self.state_path: lambda temp: dump_json(state, temp)})

    def load_state(self, config: TrainingConfig) -> dict:
        """The run so far, after checking it belongs to this command."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as error:
            raise self._unusable(error) from None
        wrong = [key for key, kind in _STATE_TYPES.items()
                 if not isinstance(state, dict) or not isinstance(state.get(key), kind)]
        if wrong:
            raise self._unusable(f"{', '.join(wrong)} missing or of the wrong type")
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

    def restore(self, model) -> None:
        """Put the saved values into ``model`` (built and compiled like the saved one)."""
        targets = _variables(model)
        try:
            with np.load(self.variables_path, allow_pickle=False) as saved:
                values = [saved[f"v{index}"] for index in range(len(saved.files))]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise self._unusable(error) from None
        shapes = [tuple(v.shape) for v in targets]
        if [value.shape for value in values] != shapes:
            raise self._unusable("its variables do not fit this model")
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


def _variables(model) -> list:
    """Everything that makes the run's state: model variables (weights, statistics, random
    generators' states) and the optimizer's, in an order fixed by the model's definition."""
    return [*model.variables, *model.optimizer.variables]


def _values(model) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(variable.value) for variable in _variables(model)]
