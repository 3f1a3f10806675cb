"""Lay MNIST images out as a model's input declares, at the pixel scale it was trained on."""

from __future__ import annotations

import numpy as np

from mnistkit.files.data import IMAGE_SIDE
from mnistkit.prepare.pixels import scale_pixels

PADDED_SIDE = 32  # LeNet-5 takes MNIST padded by 2 pixels to 32x32, as LeCun's paper did


def prepare_images(images: np.ndarray, input_shape: tuple[int | None, ...],
                   scale: str | None = "0-1") -> np.ndarray:
    """Scale uint8 images of shape (n, 28, 28) and lay them out as a model expects.

    ``input_shape`` is the model's input without the batch axis, ``None`` standing for any
    size: see :func:`layout_for`. A 32x32 input gets the images padded by 2 black pixels on
    each side; 3 channels get the grey image repeated in each. ``scale`` is one of
    ``pixels.SCALES``, or None to keep the uint8 pixels (a quarter of the memory).
    """
    layout = layout_for(input_shape)
    side = PADDED_SIDE if PADDED_SIDE in layout or PADDED_SIDE ** 2 in layout else IMAGE_SIDE
    images = np.asarray(images)
    if side != IMAGE_SIDE:
        pad = (side - IMAGE_SIDE) // 2
        images = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    pixels = images if scale is None else scale_pixels(images, scale)
    if len(layout) == 3 and 3 in (layout[0], layout[2]):  # grey repeated in 3 channels
        axis = 1 if layout[0] == 3 else -1
        return np.repeat(np.expand_dims(pixels, axis), 3, axis=axis)
    return pixels.reshape((len(pixels), *layout))


def _layouts() -> list[tuple[int, ...]]:
    found = []
    for side in (IMAGE_SIDE, PADDED_SIDE):
        found += [(side * side,), (side, side), (side, side, 1), (1, side, side),
                  (side, side, 3), (3, side, side)]
    return found


def layout_for(input_shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """The MNIST layout that fits ``input_shape``, or ValueError naming what does not fit.

    28x28 images as (784,), (28, 28), (28, 28, 1) or channels-first (1, 28, 28); the same
    with 3 channels of grey; or any of these at 32x32 (MNIST padded by 2 pixels).
    """
    for layout in _layouts():
        if len(input_shape) == len(layout) and all(
                dim is None or dim == want for dim, want in zip(input_shape, layout, strict=True)):
            return layout
    raise ValueError(f"input shape {tuple(input_shape)} does not take 28x28 MNIST images "
                     "(expected (784,), (28, 28), (28, 28, 1) or (1, 28, 28), with 1 or 3 "
                     "channels, at 28x28 or padded to 32x32)")
