"""The per-epoch checkpoint that lets ``--resume`` continue a run that crashed or was stopped.

Beside ``models/NAME.h5`` it keeps ``models/NAME.ckpt.keras`` (weights and optimizer
state) and ``models/NAME.ckpt.json`` (epochs done, history, settings). Both are written
together, whole, after every epoch, and removed once the model itself is saved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnistkit.saving import dump_json, publish, save_keras_model

# Settings that must not change between a run and its resumption.
_SAME_SETTINGS = ("run_name", "batch_size", "optimizer", "learning_rate", "validation_split",
                  "seed", "mixed_precision", "distribute")


class CheckpointError(Exception):
    """The checkpoint cannot be used to resume this run."""


class Checkpoint:
    def __init__(self, output: str | Path):
        stem = Path(output).with_suffix("")
        self.model_path = stem.with_name(stem.name + ".ckpt.keras")
        self.state_path = stem.with_name(stem.name + ".ckpt.json")

    def exists(self) -> bool:
        return self.model_path.exists() and self.state_path.exists()

    def save(self, model, state: dict) -> None:
        publish({self.model_path: lambda temp: save_keras_model(model, temp),
                 self.state_path: lambda temp: dump_json(state, temp)})

    def load(self, config: argparse.Namespace):
        """The saved model (compiled, with its optimizer state) and the saved state."""
        import keras

        try:
            state = json.loads(self.state_path.read_text())
            model = keras.models.load_model(self.model_path, safe_mode=True)
        except Exception as error:  # any damage means the checkpoint cannot be trusted
            raise CheckpointError(f"{self.model_path}: cannot resume from it ({error}); "
                                  "delete it or run without --resume") from None
        changed = ["--" + name.replace("_", "-") for name in _SAME_SETTINGS
                   if state["settings"].get(name) != getattr(config, name, None)]
        if changed:
            raise CheckpointError(
                f"{self.state_path}: the checkpoint was made with other settings "
                f"({', '.join(changed)}); "
                "run the same command to resume, or drop --resume to start afresh")
        return model, state

    def remove(self) -> None:
        self.model_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)

    @staticmethod
    def settings(config: argparse.Namespace) -> dict:
        return {name: getattr(config, name, None) for name in _SAME_SETTINGS}
