"""Training data for ``fit``: laid out for the model, split, and shuffled per epoch.

Epoch ``e`` visits the training images in an order derived from (seed, e) alone, so a run
resumed at any epoch sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.prepare.inputs import prepare_images
from mnistkit.prepare.pixels import scale_in_graph, scale_pixels


def split(model, mnist: Mnist, validation_split: float):
    """Training arrays and validation data, laid out for ``model``; like Keras'
    ``validation_split``, the validation images are the last ones, taken before shuffling.

    The images stay uint8, scaled batch by batch (:class:`ShuffledBatches`,
    :func:`validation_arguments`): on TensorFlow that spares every run scaling and copying
    188 MB of floats before training starts."""
    images = prepare_images(mnist.train_images, model.input_shape[1:], scale=None)
    labels = mnist.train_labels.astype(np.int32)
    keep = math.ceil(len(images) * (1 - validation_split))
    if keep == len(images):
        return images, labels, None
    return images[:keep], labels[:keep], (images[keep:], labels[keep:])


def validation_arguments(validation, batch_size: int) -> dict:
    """``fit``'s validation arguments for ``validation`` = (uint8 images, labels) or None.

    On TensorFlow a tf.data pipeline scales each batch, as the training batches are: Keras
    would copy 38 MB of scaled floats into its own pipeline each run (0.2 s before the first
    validation). Elsewhere the images are scaled here, to the same floats."""
    import keras

    if validation is None:
        return {"validation_data": None}
    images, labels = validation
    if keras.backend.backend() != "tensorflow":
        return {"validation_data": (scale_pixels(images), labels),
                "validation_batch_size": batch_size}
    import tensorflow as tf

    dataset = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
               .map(lambda batch, answers: (scale_in_graph(batch), answers)).prefetch(1)
               .with_options(_without_autotuner()))
    return {"validation_data": dataset}


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order in which epoch ``epoch`` (0-based) of a run with ``seed`` visits the images."""
    return np.random.default_rng([seed, epoch]).permutation(count).astype(np.int32)


class ShuffledBatches:
    """``fit``'s arguments, plus a callback that tells the data which epoch begins.

    On TensorFlow the batches come from a tf.data pipeline over the data held once as a
    tensor, with a fixed prefetch of two batches: tf.data's autotuner, which ``fit`` switches
    on for arrays, stalls some epochs at their start for seconds with both cores idle.
    Other backends get a Keras ``PyDataset`` with the same order, each epoch's batches cut
    at its start; on JAX the data is copied to the device once and cut there, rather than
    sent from the host every step (on a GPU that copy, not the arithmetic, set the pace).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 first_epoch: int = 0):
        """``images``: uint8, laid out for the model (:func:`split`); batches come scaled."""
        self.images, self.labels = images, labels
        self.batch_size, self.seed = batch_size, seed
        self.epoch = first_epoch

    def fit_arguments(self) -> dict:
        import keras

        if keras.backend.backend() != "tensorflow":
            return {"x": _py_dataset(self), "shuffle": False}
        import tensorflow as tf

        images, labels = tf.constant(self.images), tf.constant(self.labels)
        # One Python call per epoch hands the epoch's order to the pipeline, which cuts it
        # into batches' positions: a slice per batch, not an element per image (0.03 s an
        # epoch less).
        orders = tf.data.Dataset.from_generator(
            lambda: iter([self.order()]), output_signature=tf.TensorSpec([None], tf.int32))
        starts = tf.data.Dataset.range(0, len(self.images), self.batch_size)
        dataset = (orders.flat_map(lambda order: starts.map(
                       lambda start: order[start:start + self.batch_size]))
                   .map(lambda index: (scale_in_graph(tf.gather(images, index)),
                                       tf.gather(labels, index)))
                   .prefetch(2)
                   # Known length: Keras would otherwise warn of data "running out" each run.
                   .apply(tf.data.experimental.assert_cardinality(self.batches_per_epoch()))
                   .with_options(_without_autotuner()))
        return {"x": dataset, "shuffle": False}

    def scaled(self, count: int) -> np.ndarray:
        """The first ``count`` images, scaled as the batches are."""
        return scale_pixels(self.images[:count])

    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def order(self) -> np.ndarray:
        return epoch_order(self.seed, self.epoch, len(self.images))

    def callback(self):
        """Sets the epoch before ``fit`` starts reading it."""
        import keras

        batches = self

        class EpochBegins(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                batches.epoch = epoch

        return EpochBegins()


def _py_dataset(batches: ShuffledBatches):
    """The batches as a Keras ``PyDataset``, counting epochs itself from the first one."""
    import keras

    # Scaled here, once: the same floats the TensorFlow pipeline computes per batch.
    images, labels = _on_device(scale_pixels(batches.images), batches.labels)

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = batches.epoch
            self.batches = _EpochCut(images, labels, batches.order(), batches.batch_size)

        def __len__(self):
            return batches.batches_per_epoch()

        def __getitem__(self, index):
            return self.batches[index]

        def on_epoch_end(self):
            self.epoch += 1
            order = epoch_order(batches.seed, self.epoch, len(batches.images))
            self.batches = _EpochCut(images, labels, order, batches.batch_size)

    return EpochBatches()


class _EpochCut:
    """An epoch's batches, gathered in one go at its start. On JAX, indexing an array by a
    batch's positions is a dispatch costing 0.7 ms on a CPU core (more than a GPU's whole
    step), and cutting the epoch into many arrays at once compiles for seconds; so the full
    batches are rows of one array, each taken by one small compiled call."""

    def __init__(self, images, labels, order: np.ndarray, batch_size: int):
        self.batch_size, self.full = batch_size, len(order) // batch_size
        if isinstance(images, np.ndarray):
            self.images, self.labels, self.order = images, labels, order
            return
        import jax.numpy as jnp

        kept, order = self.full * batch_size, jnp.asarray(order)
        images, labels = jnp.take(images, order, axis=0), jnp.take(labels, order, axis=0)
        self.rows = [array[:kept].reshape(self.full, batch_size, *array.shape[1:])
                     for array in (images, labels)]
        self.order = None
        self.tail = (images[kept:], labels[kept:]) if kept < len(order) else None

    def __getitem__(self, index: int):
        if self.order is not None:  # NumPy: each batch gathered when asked for
            chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            return self.images[chosen], self.labels[chosen]
        if index == self.full:
            return self.tail
        return _row(self.rows[0], index), _row(self.rows[1], index)


def _without_autotuner():
    """tf.data options with the autotuner off (see :class:`ShuffledBatches`)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _row(stacked, index: int):
    return _jitted_row()(stacked, index)


@functools.cache
def _jitted_row():
    import jax

    return jax.jit(lambda stacked, index: stacked[index])  # one compile: the index is traced


def _on_device(images: np.ndarray, labels: np.ndarray):
    """The arrays on JAX's default device, when Keras runs on JAX without a distribution
    (which lays batches out over its devices itself); else as they are."""
    import keras

    if keras.backend.backend() != "jax" or keras.distribution.distribution() is not None:
        return images, labels
    import jax

    return jax.device_put(images), jax.device_put(labels)
