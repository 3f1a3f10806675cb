"""The record of a training run: built once the model is tested, saved beside the model with
its training curves (each file whole or not at all), and summed up on the terminal."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from mnistkit import backend, runtime
from mnistkit.files.data import Mnist
from mnistkit.files.records import record_path
from mnistkit.files.saving import dump_json, publish, save_keras_model
from mnistkit.score.evaluation import TestResult
from mnistkit.train import devices
from mnistkit.train.config import TrainingConfig


def curves_path(config: TrainingConfig) -> Path | None:
    """Where the training curves go, or None with ``--no-plot``."""
    return None if config.no_plot else Path(config.output).with_suffix(".png")


def check_record_is_ours(output: str) -> None:
    """Refuse an output whose record would overwrite another model's: ``m.keras`` and
    ``m.h5`` share ``m.json``."""
    from mnistkit.files.saving import OutputError
    from mnistkit.read.finding import MODEL_SUFFIXES

    for suffix in MODEL_SUFFIXES:
        other = Path(output).with_suffix(suffix)
        if suffix != Path(output).suffix and other.exists():
            raise OutputError(f"{output}: its record {record_path(output)} is that of {other}; "
                              "choose another name, or move that model away first")


def build_record(model, config: TrainingConfig, mnist: Mnist, train_images: int,
                 history: dict, epoch_seconds: list[float], train_seconds: float,
                 result: TestResult, placement: devices.Placement) -> dict:
    """The run's record: what was asked, what it gave, on what; written as JSON."""
    return {
        "model": config.run_name,
        "file": Path(config.output).name,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "arguments": config.arguments(),
        "params": model.count_params(),
        "test": result.as_dict(),
        "epochs_run": len(epoch_seconds),
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "epoch_seconds": epoch_seconds,
        "train_seconds": train_seconds,
        "train_images": train_images,
        "data": mnist.source,
        "versions": runtime.versions(),
        "backend": backend.backend(),
        "device": placement.device,
        "placement": placement.as_dict(),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def save_run(model, record: dict, config: TrainingConfig) -> None:
    """Save the model, its JSON record and (unless ``--no-plot``) its training curves as PNG,
    all with the same stem, together, each whole or not at all."""
    writers = {config.output: lambda temp: save_keras_model(model, temp),
               record_path(config.output): lambda temp: dump_json(data=record, path=temp)}
    if curves := curves_path(config):
        from mnistkit.report import plots

        writers[curves] = lambda temp: plots.training_curves(record, temp)
    publish(writers)


def print_outcome(config: TrainingConfig, result: TestResult, stopper,
                  placement: devices.Placement) -> None:
    """The test score, and what was written where."""
    if stopper is not None:
        print(stopper.summary())
    print(f"test accuracy {result.accuracy:.4f} ({result.errors}/{result.total} wrong), "
          f"test loss {result.loss:.4f}, on all {result.total:,} test images")
    if not placement.is_chief:
        print(f"process {placement.process_index} of {placement.processes}: "
              f"{config.output} is saved by process 0")
        return
    curves = curves_path(config)
    print(f"saved {config.output}, {record_path(config.output)}"
          + (f" and {curves}" if curves else ""))
    if config.tensorboard:
        print(f"TensorBoard logs in {config.tensorboard}/; to see them: "
              f"tensorboard --logdir {config.tensorboard}")
