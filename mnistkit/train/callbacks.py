"""Keras callbacks used by training (imported only once Keras is wanted)."""

from __future__ import annotations

import math
import time

import keras

from mnistkit.files.data import Mnist
from mnistkit.score.evaluation import evaluate_model


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, validation included (continuing ``earlier`` when resuming)."""

    def __init__(self, earlier: list[float] | None = None):
        super().__init__()
        self.seconds: list[float] = list(earlier or [])

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class StepProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar (``fit``'s verbose 1; verbose 2 is its line per epoch), never past
    the epoch's last step. Keras runs ``steps_per_execution`` steps a call and reports each
    call's last step number, so the epoch's last, shorter call reported 384 of 375 steps."""

    def on_train_batch_end(self, batch, logs=None):
        if self.target is not None:
            batch = min(batch, self.target - 1)
        super().on_train_batch_end(batch, logs)


class SaveCheckpoint(keras.callbacks.Callback):
    """After every epoch, save model, optimizer state and the run so far to ``checkpoint``
    (unless it is None: then only the run so far is kept, in ``state``).

    ``state`` is the run so far (empty on a fresh start); its ``history`` grows here, so it
    holds every epoch, also those before a resumption.
    """

    def __init__(self, checkpoint, state: dict, timer: EpochTimer):
        super().__init__()
        self.checkpoint, self.state, self.timer = checkpoint, state, timer

    def on_train_begin(self, logs=None):
        self._start, self._earlier_seconds = time.perf_counter(), self.state["train_seconds"]

    def on_epoch_end(self, epoch, logs=None):
        logs = {**(logs or {}), "learning_rate": keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate)}
        for key, value in logs.items():
            self.state["history"].setdefault(key, []).append(float(value))
        saving = time.perf_counter()
        self.state.update(epoch=epoch + 1, epoch_seconds=self.timer.seconds,
                          train_seconds=self.train_seconds())
        if self.checkpoint is not None:
            self.checkpoint.save(self.model, self.state)
        self.timer.seconds[-1] += time.perf_counter() - saving  # the epoch's cost includes it

    def train_seconds(self) -> float:
        return self._earlier_seconds + time.perf_counter() - self._start


class NanGuard(keras.callbacks.Callback):
    """Stop at once, by raising ``error``, when the training loss stops being a finite number."""

    def __init__(self, error: type[Exception]):
        super().__init__()
        self.error = error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise self.error(f"the training loss became {float(loss)} at step {batch + 1}; "
                             "try a smaller --learning-rate (nothing was saved)")


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop training once validation accuracy reaches ``target``.

    Without validation data it scores the whole test set after each epoch instead, logs it
    as ``test_accuracy`` and says so, since that is no longer a held-out measurement.
    """

    def __init__(self, target: float, mnist: Mnist):
        super().__init__()
        self.target, self.mnist = target, mnist
        self.reached_epoch: int | None = None
        self.measured_on = "validation"

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        accuracy = logs.get("val_accuracy")
        if accuracy is None:
            self.measured_on = "test"
            accuracy = evaluate_model(self.model, self.mnist.test_images,
                                      self.mnist.test_labels).accuracy
            logs["test_accuracy"] = accuracy
        if accuracy >= self.target and self.reached_epoch is None:
            self.reached_epoch = epoch + 1
            self.seconds = time.perf_counter() - self._start
            self.model.stop_training = True

    def summary(self) -> str:
        if self.reached_epoch is None:
            return f"target {self.measured_on} accuracy {self.target} not reached"
        return (f"reached {self.measured_on} accuracy {self.target} after "
                f"{self.reached_epoch} epoch(s), {self.seconds:.1f} s of training")

    def as_dict(self) -> dict:
        return {"target": self.target, "measured_on": self.measured_on,
                "reached_epoch": self.reached_epoch,
                "seconds": getattr(self, "seconds", None)}
