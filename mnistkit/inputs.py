"""Lay MNIST images out as a model's input declares, at the pixel scale it was trained on."""

from __future__ import annotations

import numpy as np

from mnistkit.data import IMAGE_SIDE, PIXELS


def prepare_images(images: np.ndarray, input_shape: tuple[int | None, ...]) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] and lay them out as a model expects.

    ``input_shape`` is the model's input without the batch axis: (784,), (28, 28),
    (28, 28, 1) or channels-first (1, 28, 28); ``None`` stands for any size.
    """
    shape = layout_for(input_shape)
    return (images.reshape((len(images), *shape)).astype(np.float32)) / np.float32(255)


def layout_for(input_shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """The MNIST layout that fits ``input_shape``, or ValueError naming what does not fit."""
    for layout in ((PIXELS,), (IMAGE_SIDE, IMAGE_SIDE), (IMAGE_SIDE, IMAGE_SIDE, 1),
                   (1, IMAGE_SIDE, IMAGE_SIDE)):
        if len(input_shape) == len(layout) and all(
                dim is None or dim == want for dim, want in zip(input_shape, layout, strict=True)):
            return layout
    raise ValueError(f"input shape {tuple(input_shape)} does not take 28x28 MNIST images "
                     "(expected (784,), (28, 28), (28, 28, 1) or (1, 28, 28))")
