"""Train a model, score it on the full test set, and save it with a JSON record of the run.

:func:`run_script` is what a ``train_*.py`` script calls; :func:`train_and_evaluate` is the
library entry point, which tests call with a few hundred images.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections.abc import Callable

from mnistkit import runtime
from mnistkit.files.data import DataError, Mnist, load_mnist
from mnistkit.files.records import record_path
from mnistkit.files.saving import OutputError, check_folder, check_targets
from mnistkit.prepare import batches
from mnistkit.score.evaluation import evaluate_model
from mnistkit.train import compiling, devices, fused_steps
from mnistkit.train.checkpoint import Checkpoint, CheckpointError
from mnistkit.train.config import TrainingConfig
from mnistkit.train.devices import DeviceError
from mnistkit.train.flags import parse_training_args
from mnistkit.train.run_record import (
    build_record,
    check_record_is_ours,
    curves_path,
    print_outcome,
    save_run,
)
from mnistkit.write.errors import ExportError
from mnistkit.write.formats import check_export_targets

VALIDATION_BATCH = 2000  # fewer, larger validation batches: less overhead per epoch


class TrainingError(Exception):
    """Training went wrong in a way the user must hear about (e.g. the loss became NaN)."""


class Terminated(Exception):
    """SIGTERM arrived; raised in the main thread so that cleanup runs."""


def run_script(parser: argparse.ArgumentParser, build_model: Callable[[TrainingConfig], object],
               argv: list[str] | None = None) -> int:
    """Parse the command line, train, report; the exit status for ``sys.exit``."""
    started = time.perf_counter()
    runtime.escape_unprintable_output()
    config = parse_training_args(parser, argv)
    devices.prepare(config)
    runtime.load_backend_quietly()
    signal.signal(signal.SIGTERM, _raise_terminated)
    resumable = f"; rerun with --resume to continue from {Checkpoint(config.output).variables_path}"
    try:
        record = train_and_evaluate(build_model, config)
    except (DataError, TrainingError, CheckpointError, DeviceError, ExportError,
            OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as stop:
        was = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        print(f"{was}: {config.output} was not written"
              f"{resumable if Checkpoint(config.output).exists() else ''}", file=sys.stderr)
        return 130 if was == "interrupted" else 143
    print(f"wall time {time.perf_counter() - started:.1f} s "
          f"(training {record['train_seconds']:.1f} s)")
    return 0


def train_and_evaluate(build_model: Callable[[TrainingConfig], object],
                       config: TrainingConfig, mnist: Mnist | None = None) -> dict:
    """Train ``build_model(config)`` as ``config`` says, test it on every test image, save it.

    After every epoch a checkpoint is kept; with ``config.resume`` a run continues from
    it. Returns the run's record, the same dict that is written as JSON beside the model.
    Of several processes training together, only the first saves.
    """
    _check_outputs(config)  # before minutes of training, not after them
    placement = devices.place(config)  # first: JAX's processes join before any computation
    runtime.seed_everything(config.seed)
    mnist = mnist or load_mnist(config.data)
    try:
        return _train(build_model, config, mnist, placement)
    finally:
        devices.release()


def _check_outputs(config: TrainingConfig) -> None:
    """OutputError unless every file the run writes can be written whole: the model, its
    record (no other model's), curves, checkpoint, exports, and the TensorBoard folder."""
    checkpoint = Checkpoint(config.output)
    check_targets([config.output, record_path(config.output), checkpoint.variables_path,
                   checkpoint.state_path, *filter(None, [curves_path(config)])])
    check_record_is_ours(config.output)
    check_export_targets(config.output, config.export)
    if config.tensorboard:
        try:
            check_folder(config.tensorboard)
        except OutputError as error:
            raise OutputError(f"--tensorboard {error}") from None


def _train(build_model, config: TrainingConfig, mnist: Mnist,
           placement: devices.Placement) -> dict:
    from mnistkit.train import fused_norm
    from mnistkit.train.callbacks import EpochTimer, NanGuard, SaveCheckpoint, StopAtAccuracy

    alone = placement.processes == 1
    if not alone and (config.resume or (config.target_accuracy and not config.validation_split)):
        raise DeviceError("--resume and --target-accuracy without a validation split need "
                          "a single process (several processes keep no checkpoint and "
                          "cannot test in between)")
    checkpoint = Checkpoint(config.output)
    with placement.scope():
        model = build_model(config)
        placement.adapt(model)
        model = fused_norm.training_copy(model)  # back to plain layers in plain_model()
        x_train, y_train, validation = batches.split(model, mnist, config.validation_split)
        batch_size = config.batch_size * placement.local_replicas  # this process's share
        steps = config.epochs * math.ceil(len(x_train) / (config.batch_size * placement.replicas))
        y_train, validation, loss = compiling.labels_and_loss(config, y_train, validation)
        model.compile(optimizer=compiling.build_optimizer(config, steps), loss=loss,
                      metrics=["accuracy"],
                      steps_per_execution=compiling.steps_per_execution(placement))
        fused_steps.fuse_steps(model)
        state = _start_or_resume(model, config, checkpoint)
    x_train, y_train = devices.shard(placement, x_train, y_train)
    if validation is not None:
        validation = devices.shard(placement, *validation)
    train_images = len(x_train) * placement.processes  # all processes' shards together
    verbose = 0 if config.quiet else (1 if sys.stdout.isatty() else 2)
    if verbose:
        print(f"{config.run_name}: {model.count_params():,} parameters, "
              f"{train_images:,} training images, {placement.describe()}")
    timer = EpochTimer(state["epoch_seconds"])
    saver = SaveCheckpoint(checkpoint if alone else None, state, timer)
    stopper = StopAtAccuracy(config.target_accuracy, mnist) if config.target_accuracy else None
    callbacks = [timer, NanGuard(TrainingError), *([stopper] if stopper else []), saver]
    if config.tensorboard:  # after the saver: an epoch is logged once saved
        from mnistkit.train import tensorboard_logs

        logs = tensorboard_logs.run_folder(config.tensorboard, config.run_name, state)
        tensorboard_logs.write_missing_epochs(logs, state["history"])
        callbacks.append(tensorboard_logs.callback(logs))

    shuffled = batches.ShuffledBatches(x_train, y_train, batch_size, config.seed, state["epoch"])
    compiling.create_variables(model, placement, shuffled.scaled(1), y_train[:1])
    callbacks.insert(0, shuffled.callback())
    validation_batch = VALIDATION_BATCH // placement.local_replicas * placement.local_replicas
    model.fit(**shuffled.fit_arguments(),
              **batches.validation_arguments(validation, validation_batch),
              initial_epoch=state["epoch"], epochs=config.epochs, verbose=verbose,
              callbacks=callbacks)

    model = placement.plain_model(model, build_model, config)
    result = evaluate_model(model, mnist.test_images, mnist.test_labels)
    record = build_record(model, config, mnist, train_images, state["history"], timer.seconds,
                     saver.train_seconds(), result, placement)
    record["target_accuracy"] = stopper.as_dict() if stopper else None
    if placement.is_chief:
        save_run(model, record, config)
        checkpoint.remove()
    print_outcome(config, result, stopper, placement)
    if config.export and placement.is_chief:  # the saved file, exactly as export.py does it
        from mnistkit.write.exports import export_and_check

        export_and_check(config.output, config.export, mnist, pixels="0-1")  # as trained
    return record


def _start_or_resume(model, config: TrainingConfig, checkpoint: Checkpoint) -> dict:
    """An empty run, or with ``--resume`` the checkpoint's run, its values put into ``model``."""
    if config.resume and checkpoint.exists():
        state = checkpoint.load_state(config)
        model.optimizer.build(model.trainable_variables)  # its variables, to be overwritten
        checkpoint.restore(model, state)
        if not config.quiet:
            print(f"resuming from {checkpoint.variables_path} after epoch {state['epoch']}")
        return state
    if config.resume and not config.quiet:
        print(f"no checkpoint at {checkpoint.variables_path}; starting afresh")
    return {"epoch": 0, "history": {}, "epoch_seconds": [], "train_seconds": 0.0,
            "settings": Checkpoint.settings(config)}


def _raise_terminated(signum, frame) -> None:
    raise Terminated()
