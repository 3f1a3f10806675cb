"""The pixel scale fed to a model: the scales people train MNIST models on, the scaling
itself, and the automatic choice of ``--pixels auto``. The one home of all three.

Images travel as MNIST stores them, uint8 0-255 of shape (n, 28, 28), from the files and
pictures up to the model's input, where :func:`scale_pixels` turns them into floats once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np

from mnistkit.files.data import DataError, Mnist, load_mnist

# How people fed MNIST to the models they trained. "0-1" is this project's own (x / 255);
# "0-255" the raw bytes; "standardised" uses MNIST's mean and standard deviation, as the
# PyTorch examples do; "centred" is [-1, 1], PyTorch's other usual input
# (transforms.Normalize((0.5,), (0.5,))); "normalize" is keras.utils.normalize(x, axis=1) on
# (n, 28, 28) images, as a well-known tf.keras tutorial does (each pixel column of each image
# to unit length). In order of how common they are: the automatic choice prefers the earlier.
SCALES = ("0-1", "0-255", "standardised", "centred", "normalize")
CHOICES = ("auto", *SCALES)  # the values of --pixels
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MEANINGS = {"0-1": "x/255", "0-255": "raw", "standardised": f"(x/255 - {MNIST_MEAN})/{MNIST_STD}",
            "centred": "x/127.5 - 1, in [-1, 1]", "normalize": "keras.utils.normalize(x, axis=1)"}
AUTO_IMAGES = 1000  # training images that decide --pixels auto: a clear winner, in a second
AUTO_MARGIN = 0.01  # 10 of those images: more than the noise between two fitting scales

# A model's classifier as the choice sees it: uint8 images and a scale in, probabilities out.
Classify = Callable[[np.ndarray, str], np.ndarray]


def scale_pixels(images: np.ndarray, scale: str = "0-1") -> np.ndarray:
    """uint8 images (n, side, side) as float32 at ``scale`` (one of SCALES)."""
    pixels = np.asarray(images).astype(np.float32)
    if scale == "0-1":
        return pixels / np.float32(255)
    if scale == "0-255":
        return pixels
    if scale == "standardised":
        return (pixels / np.float32(255) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    if scale == "centred":  # (x/255 - 0.5)/0.5, as PyTorch computes it, to float32 rounding
        return pixels / np.float32(127.5) - np.float32(1)
    if scale == "normalize":
        norms = np.sqrt(np.square(pixels).sum(axis=1, keepdims=True))
        return pixels / np.where(norms == 0, np.float32(1), norms)
    raise ValueError(f"unknown pixel scale {scale!r} (expected one of {', '.join(SCALES)})")


def scale_in_graph(images):
    """uint8 images as float32 on the "0-1" scale inside a TensorFlow graph (the tf.data
    pipelines of training): the same float32 division as :func:`scale_pixels`, so the same
    values to the last bit."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 255


def choose_scale(classify: Classify, mnist: Mnist) -> tuple[str, dict[str, float]]:
    """The scale under which ``classify`` reads a slice of the *training* set best (the test
    set stays unseen), and the accuracy each scale gave. A later scale must beat the best
    before it by more than AUTO_MARGIN, so that noise on 1,000 images never moves a model off
    the usual scale. A model with its own rescaling comes out as the scale it wants fed."""
    step = max(1, len(mnist.train_labels) // AUTO_IMAGES)
    images = mnist.train_images[::step][:AUTO_IMAGES]
    labels = mnist.train_labels[::step][:AUTO_IMAGES]
    accuracies = {}
    for scale in SCALES:
        predicted = classify(images, scale).argmax(axis=1)
        accuracies[scale] = round(float((predicted == labels).mean()), 4)
    best = SCALES[0]
    for scale in SCALES[1:]:
        if accuracies[scale] > accuracies[best] + AUTO_MARGIN:
            best = scale
    return best, accuracies


def resolve_scale(classify: Classify, pixels: str,
                  mnist: Mnist | None) -> tuple[str, dict[str, float] | None]:
    """``pixels`` itself, or for "auto" the scale :func:`choose_scale` finds."""
    if pixels != "auto":
        return pixels, None
    if mnist is None:
        raise ValueError("--pixels auto needs MNIST's training images to decide")
    return choose_scale(classify, mnist)


def mnist_for_pixels(pixels: str, path: str | os.PathLike | None,
                     mnist: Mnist | None = None) -> tuple[Mnist | None, str]:
    """MNIST for ``--pixels auto`` to choose a scale with, and the scale to ask for: without
    training images to decide with (offline, say), MNIST's usual 0-1, with a note."""
    if pixels != "auto" or mnist is not None:
        return mnist, pixels
    try:
        return load_mnist(path), pixels
    except DataError as error:
        print(f"note: --pixels auto: {error}; feeding 0-1 pixels", file=sys.stderr)
        return None, "0-1"
