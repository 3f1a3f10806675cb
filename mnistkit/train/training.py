"""Train a model as the ``train_*.py`` scripts do, for tests and benchmarks that give their
own model and a few hundred images: the same stages (:class:`mnistkit.train.run.TrainingRun`)
around the same ``compile`` and ``fit``. Errors are raised, not printed."""

from __future__ import annotations

from collections.abc import Callable

from mnistkit.files.data import Mnist
from mnistkit.train.config import TrainingConfig
from mnistkit.train.run import TrainingError, TrainingRun

__all__ = ["TrainingError", "train_and_evaluate"]


def train_and_evaluate(build_model: Callable[[TrainingConfig], object],
                       config: TrainingConfig, mnist: Mnist | None = None) -> dict:
    """Train ``build_model(config)`` as ``config`` says, test it on every test image, save
    it; the run's record, the dict written as JSON beside the model."""
    run = TrainingRun(config, mnist)
    try:
        run.load_data()
        with run.scope():
            model = run.for_training(build_model(config))
            data = run.training_data(model)
            model.compile(optimizer=run.optimizer(), loss=run.loss(), metrics=["accuracy"],
                          steps_per_execution=run.steps_per_execution())
            initial_epoch = run.start(model)
        model.fit(data.train, validation_data=data.validation,
                  validation_batch_size=data.validation_batch_size, shuffle=False,
                  epochs=config.epochs, initial_epoch=initial_epoch,
                  callbacks=run.callbacks(), verbose=run.verbose)
        model = run.trained(model)
        return run.save(model, run.test(model))
    finally:
        run.close()
