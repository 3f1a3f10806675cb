"""The typed configuration of one training run, built from the command line.

The training stage reads its settings from a :class:`TrainingConfig`, never from an argparse
namespace: every setting has its type and its default here, once. Field names are the
flags' names (``--batch-size`` is ``batch_size``), so that the run's record lists the
arguments as the user typed them. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

DEFAULT_SEED = 1
# The tutorials' settings; a script or an architecture may change any of them.
TRAINING_DEFAULTS = {"epochs": 5, "batch_size": 128, "optimizer": "adam", "learning_rate": None,
                     "schedule": "constant", "validation_split": 0.2, "precision": "float32",
                     "label_smoothing": 0.0}


@dataclass(frozen=True)
class TrainingConfig:
    """Every setting of a training run: what the model is, how it trains, where it goes."""

    name: str  # the script's model name: logreg, mlp, cnn
    output: str  # the model file; its record, curves and checkpoint go beside it
    arch: str | None = None  # train_cnn.py's architecture
    epochs: int = TRAINING_DEFAULTS["epochs"]
    batch_size: int = TRAINING_DEFAULTS["batch_size"]
    optimizer: str = TRAINING_DEFAULTS["optimizer"]
    learning_rate: float | None = None  # None: the optimizer's own
    schedule: str = TRAINING_DEFAULTS["schedule"]
    validation_split: float = TRAINING_DEFAULTS["validation_split"]
    label_smoothing: float = TRAINING_DEFAULTS["label_smoothing"]
    precision: str = TRAINING_DEFAULTS["precision"]
    seed: int = DEFAULT_SEED
    data: str | None = None  # local MNIST; None: $MNIST_DATA, else Keras' download
    target_accuracy: float | None = None
    tensorboard: str | None = None  # a folder for TensorBoard logs
    no_plot: bool = False
    resume: bool = False
    device: str = "auto"
    distribute: bool = False
    cpu_devices: int = 1
    quiet: bool = False
    export: tuple[str, ...] = ()  # formats to write after training (mnistkit.write.formats)

    @property
    def run_name(self) -> str:
        """``cnn_deeper``: the script's name and the architecture, the default file's stem."""
        return f"{self.name}_{self.arch}" if self.arch else self.name

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> TrainingConfig:
        """The config of parsed flags: every field taken from ``args``, nothing else."""
        return cls(**{field.name: getattr(args, field.name)
                      for field in dataclasses.fields(cls) if hasattr(args, field.name)})

    def replace(self, **changes) -> TrainingConfig:
        return dataclasses.replace(self, **changes)

    def arguments(self) -> dict:
        """The settings as the run's record lists them."""
        return {**dataclasses.asdict(self), "run_name": self.run_name}
