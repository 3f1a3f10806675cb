"""What ``model.compile`` gets: the optimizer and its schedule, the labels and loss, the
steps per call."""

from __future__ import annotations

from mnistkit.train.config import TrainingConfig
from mnistkit.train.devices import Placement

# Keras dispatches one Python call per step by default: for these small models that
# overhead, not arithmetic, is most of the time. Running many steps per call removes it.
STEPS_PER_EXECUTION = 64


def build_optimizer(config: TrainingConfig, total_steps: int):
    """The optimizer ``config`` names (``optimizer``, ``learning_rate``, ``schedule``), its
    schedule spread over ``total_steps``."""
    import keras

    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
               "nadam": keras.optimizers.Nadam}
    optimizer = classes[config.optimizer]
    peak = config.learning_rate or optimizer().learning_rate.numpy().item()
    if config.schedule == "cosine":
        peak = keras.optimizers.schedules.CosineDecay(peak, decay_steps=total_steps)
    elif config.schedule == "onecycle":
        warmup = max(1, total_steps // 5)
        peak = keras.optimizers.schedules.CosineDecay(
            peak / 25, decay_steps=total_steps - warmup, warmup_target=peak,
            warmup_steps=warmup)
    return optimizer(learning_rate=peak)


def labels_and_loss(config: TrainingConfig, y_train, validation):
    """The labels and the loss: digits as integers, or with --label-smoothing as one-hot rows,
    which Keras' smoothed cross-entropy needs."""
    smoothing = config.label_smoothing
    if not smoothing:
        return y_train, validation, "sparse_categorical_crossentropy"
    import keras

    def one_hot(labels):
        return keras.utils.to_categorical(labels, 10).astype("float32")

    if validation is not None:
        validation = (validation[0], one_hot(validation[1]))
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    return one_hot(y_train), validation, loss


def steps_per_execution(placement: Placement) -> int:
    """Training steps per call of Keras' step function."""
    import keras

    # Keras' torch trainer refuses more than one step per call; under a TensorFlow strategy
    # several steps per call fail inside TensorFlow ("You must feed a value for placeholder").
    if keras.backend.backend() == "torch" or placement.strategy is not None:
        return 1
    # JAX over several CPU devices: with many steps queued, XLA's CPU client can start a
    # later step on one device before the all-reduce of an earlier one, and both wait for
    # ever (seen on a busy 2-core machine). One step per call, each awaited by NanGuard's
    # look at the loss, keeps a single step in flight.
    if placement.engine == "DataParallel" and placement.device.startswith("CPU"):
        return 1
    return STEPS_PER_EXECUTION
