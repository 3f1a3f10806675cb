"""MNIST-C (Mu & Gilmer, 2019): the test set under 15 corruptions.

Each corruption is written here with NumPy alone from what the published code does when run
with the libraries of 2019 it was written for (ImageMagick, OpenCV, SciPy and scikit-image
0.14-0.15), at the one severity the paper chose for it, with its own fixed seed: the same
test images always give the same corrupted ones. Every function takes float images in
[0, 1] of shape (n, 28, 28) and returns the same. The image operations are in
``corruption_ops``, ``strokes`` and ``edges``; the sets are built once and cached
(``corruption_cache``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnistkit.prepare import corruption_ops as ops
from mnistkit.prepare import edges, strokes

VERSION = 2  # raised whenever a corruption changes: the old cache is then ignored
SEED = 2019  # the paper's year; each corruption draws from (SEED, its index)


def shot_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon counting: a Poisson count at 3 photons for full ink."""
    return np.clip(rng.poisson(x * 3.0) / 3.0, 0, 1)


def impulse_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on 17% of the pixels, half each."""
    hit = rng.random(x.shape) < 0.17
    return np.where(hit, (rng.random(x.shape) < 0.5).astype(x.dtype), x)


def glass_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, shuffle neighbouring pixels twice, blur again (sigma 0.7, 1 pixel, 2 rounds).
    The blurs are vertical only: the published code asked scikit-image of 2019 to spare the
    last axis as colour channels, and a 28x28 image's last axis is its columns."""
    blurred = np.floor(ops.gaussian(x, 0.7, axes=(1,)) * 255) / 255  # truncated to bytes
    shuffled = ops.local_shuffle(blurred, rng, delta=1, rounds=2)
    return np.clip(ops.gaussian(shuffled, 0.7, axes=(1,)), 0, 1)


def motion_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera moving at an angle within ±45°: ImageMagick's motion blur of radius 10
    (21 whole-pixel taps) and sigma 3."""
    angles = np.deg2rad(rng.uniform(-45, 45, len(x)))
    levels = ops.motion_blur(x, angles, radius=10, sigma=3.0) * 255
    # ImageMagick (Q16) rounds to its 16-bit levels, and the 8-bit PNG it hands back keeps
    # the byte below: every pixel of the published code's output matches this.
    return np.floor(np.round(levels * 257) / 257) / 255


def shear(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slant by 0.4 radians either way, about the centre."""
    amount = 0.4 * rng.choice([-1.0, 1.0], len(x))
    linear = np.zeros((len(x), 2, 2))
    linear[:, 0, 0] = 1
    linear[:, 0, 1] = -np.sin(amount)
    linear[:, 1, 1] = np.cos(amount)
    return ops.affine(x, linear)


def scale(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit shrunk to 70% about the centre."""
    return ops.affine(x, np.broadcast_to(np.eye(2) / 0.7, (len(x), 2, 2)))


def rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turned by 0.4 radians (about 23°) either way, about the centre."""
    angle = 0.4 * rng.choice([-1.0, 1.0], len(x))
    cos, sin = np.cos(angle), np.sin(angle)
    return ops.affine(x, np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1))


def brightness(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the range added: the background turns mid grey."""
    return np.clip(x + 0.5, 0, 1)


def translate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Moved 3 pixels along each axis, either way."""
    out = np.zeros_like(x)
    shifts = rng.choice([-3, 3], (len(x), 2))
    for (rows, cols) in {tuple(shift) for shift in shifts}:
        chosen = np.all(shifts == (rows, cols), axis=1)
        out[chosen] = ops.shift(x[chosen], rows, cols)
    return out


def stripe(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The outer quarters inverted, the middle half left."""
    out = x.copy()
    out[:, :, :7] = 1 - out[:, :, :7]
    out[:, :, 21:] = 1 - out[:, :, 21:]
    return out


def fog(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plasma fractal cloud three times the ink's brightness, rescaled."""
    cloud = ops.plasma(rng, len(x), decay=1.4)
    peak = x.max(axis=(1, 2), keepdims=True)
    return np.clip((x + 3.0 * cloud) * peak / (peak + 3.0), 0, 1)


def spatter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blobs of dark grey mud where smoothed noise runs high."""
    liquid = ops.gaussian(rng.normal(0.65, 0.3, x.shape), 1.0)
    mud = ops.gaussian((liquid > 0.65).astype(x.dtype), 1.5)
    mud[mud < 0.8] = 0
    return np.clip(x * (1 - mud) + 63 / 255 * mud, 0, 1)


def dotted_line(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dashed line across the digit: columns 2-3, 6-7, ... 26 of a line between two
    random rows."""
    return np.clip(x + strokes.dotted_lines(rng, len(x)), 0, 1)


def zigzag(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag line across the digit, slightly tilted."""
    return np.clip(x + strokes.zigzags(rng, len(x)), 0, 1)


def canny_edges(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Only the digit's outline, as scikit-image's Canny edge detector of 2019 finds it
    with its defaults (sigma 1, thresholds 0.1 and 0.2)."""
    return edges.canny(x, sigma=1.0, low=0.1, high=0.2)


CORRUPTIONS = {function.__name__: function for function in (
    shot_noise, impulse_noise, glass_blur, motion_blur, shear, scale, rotate, brightness,
    translate, stripe, fog, spatter, dotted_line, zigzag, canny_edges)}


def corrupt(name: str, images: np.ndarray) -> np.ndarray:
    """The uint8 test ``images`` (n, 28, 28) under the corruption ``name``, as uint8."""
    rng = np.random.default_rng([SEED, list(CORRUPTIONS).index(name)])
    result = CORRUPTIONS[name](images.astype(np.float64) / 255, rng)
    # Through float32 before rounding, as the published code hands its images back: a
    # level a hair under half-way rounds as it did there.
    return np.round((np.clip(result, 0, 1) * 255).astype(np.float32)).astype(np.uint8)


def build_all(images: np.ndarray,
              progress: Callable[[int, str | None], None] | None = None) -> np.ndarray:
    """Every corruption of ``images``: uint8, shape (15, n, 28, 28), in CORRUPTIONS' order.
    ``progress(built, name)`` hears before each corruption is built (and once more at the
    end, with ``name`` None): building them all takes most of a minute."""
    built = []
    for name in CORRUPTIONS:
        if progress:
            progress(len(built), name)
        built.append(corrupt(name, images))
    if progress:
        progress(len(built), None)
    return np.stack(built)
