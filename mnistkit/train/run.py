"""One training run's pieces, in the order a ``train_*.py`` script uses them around its own
``model.compile`` and ``model.fit``: the data, the model to train, the optimizer and loss,
the start (fresh, or resumed from the last finished epoch), the callbacks, the trained model,
its test on all 10,000 test images, and the save.

Used as ``with TrainingRun(config) as run:`` in a script, every error of the run (bad data,
a NaN loss, Ctrl-C) ends in one line and :attr:`TrainingRun.status`, the exit status.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

from mnistkit import backend, runtime
from mnistkit.files.data import DataError, Mnist, load_mnist
from mnistkit.interrupts import Terminated, stop_on_signals, stopped
from mnistkit.prepare import batches
from mnistkit.score.evaluation import TestResult, evaluate_model
from mnistkit.train import compiling, devices, precision, speedups
from mnistkit.train.checkpoint import Checkpoint, CheckpointError
from mnistkit.train.config import TrainingConfig
from mnistkit.train.devices import DeviceError
from mnistkit.train.outputs import check_outputs
from mnistkit.train.run_record import build_record, print_outcome, save_run
from mnistkit.write.errors import ExportError

VALIDATION_BATCH = 2000  # fewer, larger validation batches: less overhead per epoch
FAILURES = (DataError, CheckpointError, DeviceError, ExportError, OSError)


class TrainingError(Exception):
    """Training went wrong in a way the user must hear about (e.g. the loss became NaN)."""


@dataclass
class TrainingData:
    """What ``fit`` reads: the training batches, in the run's own seeded order (exact on
    resume), and the validation data; scaled from MNIST's bytes batch by batch."""

    train: object  # a tf.data pipeline, or a Keras PyDataset on the other backends
    validation: object  # fit's validation_data, or None
    validation_batch_size: int | None
    images: int  # training images, of all processes together
    labels: object  # this process's training labels (one-hot with label smoothing)
    batches: batches.ShuffledBatches


class TrainingRun:
    def __init__(self, config: TrainingConfig, mnist: Mnist | None = None,
                 script: bool = False):
        self.config, self.mnist, self.script = config, mnist, script
        self.placement: devices.Placement | None = None
        self.checkpoint = Checkpoint(config.output)
        self.data: TrainingData | None = None
        self.state: dict = {}
        self.timer = self.saver = self.stopper = None  # the callbacks, made with them
        self.status = 0
        self.started = time.perf_counter()

    # --- as a script's context: set up, then every error in one line ------------------
    def __enter__(self) -> TrainingRun:
        """A script's run: what the backend reads as it loads, set before it loads (in
        :meth:`load_data`); a temporary folder of its own; SIGTERM and SIGHUP as Ctrl-C."""
        self.script = True
        runtime.escape_unprintable_output()
        runtime.tolerate_library_warnings()
        devices.prepare(self.config)
        runtime.use_own_scratch()
        stop_on_signals()
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.close()
        if error is None:
            print(f"wall time {time.perf_counter() - self.started:.1f} s "
                  f"(training {self.state['train_seconds']:.1f} s)")
            return False
        if isinstance(error, (*FAILURES, TrainingError, backend.BackendError)):
            print(f"error: {error}", file=sys.stderr)
            self.status = 2 if isinstance(error, backend.BackendError) else 1
            return True
        if isinstance(error, KeyboardInterrupt | Terminated):
            was, self.status = stopped(error)
            resumable = (f"; rerun with --resume to continue from "
                         f"{self.checkpoint.variables_path}" if self.checkpoint.exists() else "")
            print(f"{was}: {self.config.output} was not written{resumable}", file=sys.stderr)
            return True
        return False

    def close(self) -> None:
        if self.placement is not None:  # placed: the backend loaded
            devices.release()

    # --- the stages, in order ---------------------------------------------------------
    def load_data(self) -> Mnist:
        """Load the backend, check the outputs, place the run on its devices, seed it, then
        read MNIST."""
        if self.script:
            backend.check_training_backend(loaded=False)
            backend.load_backend_quietly()
            backend.check_training_backend()
        check_outputs(self.config)  # before minutes of training, not after them
        self.placement = devices.place(self.config)  # first: JAX's processes join first
        runtime.seed_everything(self.config.seed)
        self.mnist = self.mnist or load_mnist(self.config.data)
        if self.placement.processes > 1 and (
                self.config.resume or (self.config.target_accuracy
                                       and not self.config.validation_split)):
            raise DeviceError("--resume and --target-accuracy without a validation split "
                              "need a single process (several processes keep no checkpoint "
                              "and cannot test in between)")
        return self.mnist

    def scope(self):
        """Where the model and its optimizer are made: a TensorFlow strategy's scope with
        --distribute, else nothing."""
        return self.placement.scope()

    def for_training(self, model):
        """The model that trains: ``model`` in the run's precision, with the speed-ups'
        layers (:mod:`mnistkit.train.speedups`); the same weights."""
        return precision.training_copy(model, self.placement.precision, speedups.layer_class)

    def training_data(self, model) -> TrainingData:
        """MNIST's training images laid out for ``model``, the validation share held out."""
        place, config = self.placement, self.config
        x_train, y_train, validation = batches.split(model, self.mnist, config.validation_split)
        y_train, validation, self._loss = compiling.labels_and_loss(config, y_train, validation)
        x_train, y_train = devices.shard(place, x_train, y_train)
        if validation is not None:
            validation = devices.shard(place, *validation)
        shuffled = batches.ShuffledBatches(x_train, y_train, config.batch_size
                                           * place.local_replicas, config.seed)
        validating = batches.validation_arguments(
            validation, VALIDATION_BATCH // place.local_replicas * place.local_replicas)
        self.data = TrainingData(
            shuffled.fit_arguments()["x"], validating["validation_data"],
            validating.get("validation_batch_size"), len(x_train) * place.processes, y_train,
            shuffled)
        return self.data

    def optimizer(self):
        """The optimizer and schedule of --optimizer, --learning-rate and --schedule."""
        per_step = self.config.batch_size * self.placement.replicas
        steps = self.config.epochs * math.ceil(self.data.images / per_step)
        return speedups.optimizer(compiling.build_optimizer(self.config, steps))

    def loss(self):
        """Cross-entropy; with --label-smoothing on one-hot labels, as Keras needs it."""
        return self._loss

    def steps_per_execution(self) -> int:
        return compiling.steps_per_execution(self.placement)

    def start(self, model) -> int:
        """After ``compile``: a fresh run, or with --resume the checkpoint's weights and
        optimizer state put into ``model``; the epoch ``fit`` starts at."""
        self.state = self.checkpoint.start_or_resume(model, self.config)
        shuffled = self.data.batches
        shuffled.epoch = self.state["epoch"]
        speedups.compiled(model, shuffled.scaled(1), self.data.labels[:1],
                          self.placement.strategy is not None)
        if self.verbose:
            print(f"{self.config.run_name}: {model.count_params():,} parameters, "
                  f"{self.data.images:,} training images, {self.placement.describe()}")
        return self.state["epoch"]

    @property
    def verbose(self) -> int:
        """``fit``'s verbosity: a progress bar on a terminal, a line per epoch in a log."""
        return 0 if self.config.quiet else (1 if sys.stdout.isatty() else 2)

    def callbacks(self) -> list:
        """The data's epoch order, the epoch timer, a stop on a NaN loss, --target-accuracy,
        the checkpoint after every epoch, the progress bar (or line) of ``verbose``, and
        --tensorboard's logs."""
        from mnistkit.train.callbacks import (
            EpochTimer,
            NanGuard,
            SaveCheckpoint,
            StepProgress,
            StopAtAccuracy,
        )

        config, alone = self.config, self.placement.processes == 1
        self.timer = EpochTimer(self.state["epoch_seconds"])
        self.saver = SaveCheckpoint(self.checkpoint if alone else None, self.state, self.timer)
        if config.target_accuracy:
            self.stopper = StopAtAccuracy(config.target_accuracy, self.mnist)
        callbacks = [self.data.batches.callback(), self.timer, NanGuard(TrainingError),
                     *([self.stopper] if self.stopper else []), self.saver, StepProgress()]
        if config.tensorboard:  # after the saver: an epoch is logged once saved
            from mnistkit.train import tensorboard_logs

            logs = tensorboard_logs.run_folder(config.tensorboard, config.run_name, self.state)
            tensorboard_logs.write_missing_epochs(logs, self.state["history"])
            callbacks.append(tensorboard_logs.callback(logs))
        return callbacks

    def trained(self, model):
        """The trained weights in a plain float32 model of Keras' own layers, outside any
        strategy or distribution: what is tested and saved."""
        if (self.placement.precision == precision.FLOAT32 and self.placement.engine is None
                and not speedups.swapped(model)):
            return model
        weights = devices.host_weights(model)
        devices.release()
        return precision.plain_copy(model, weights, speedups.plain_class)

    def test(self, model) -> TestResult:
        """Loss, accuracy and errors on all 10,000 test images."""
        return evaluate_model(model, self.mnist.test_images, self.mnist.test_labels)

    def save(self, model, result: TestResult) -> dict:
        """The model, its JSON record and curves, written whole; then --export's formats.
        Of several processes training together, only the first saves. The record."""
        config, place = self.config, self.placement
        record = build_record(model, config, self.mnist, self.data.images,
                              self.state["history"], self.timer.seconds,
                              self.saver.train_seconds(), result, place)
        record["target_accuracy"] = self.stopper.as_dict() if self.stopper else None
        self.state["train_seconds"] = record["train_seconds"]
        if place.is_chief:
            save_run(model, record, config)
            self.checkpoint.remove()
        print_outcome(config, result, self.stopper, place)
        if config.export and place.is_chief:  # the saved file, exactly as export.py does it
            from mnistkit.write.exports import export_and_check

            export_and_check(config.output, config.export, self.mnist, pixels="0-1")
        return record
