"""The image operations MNIST-C's corruptions are made of, on whole batches at once.

Images are float arrays of shape (n, 28, 28) in [0, 1]; coordinates are (row, column) with
the image's centre at (13.5, 13.5). Everything is NumPy, vectorised over the batch, so the
15 sets of 10,000 images take seconds each, not minutes.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
CENTRE = (SIDE - 1) / 2


def correlate(x: np.ndarray, weights: np.ndarray, axis: int, mode: str) -> np.ndarray:
    """x correlated with symmetric or antisymmetric ``weights`` along ``axis``, ``mode``
    as np.pad's. The sum runs in SciPy's order (the centre tap, then the pairs of taps from
    the outermost in): the published corruptions were made with SciPy's filters, and the
    last bit decides ties in Canny's edges and the bytes a glass blur rounds down to."""
    radius = len(weights) // 2
    padding = [(0, 0)] * x.ndim
    padding[axis] = (radius, radius)
    padded = np.pad(x, padding, mode=mode)
    length = x.shape[axis]

    def at(offset: int) -> np.ndarray:
        return np.take(padded, range(radius + offset, radius + offset + length), axis=axis)

    symmetric = np.array_equal(weights, weights[::-1])
    out = at(0) * weights[radius]
    for step in range(radius, 0, -1):
        pair = at(step) + at(-step) if symmetric else at(step) - at(-step)
        out = out + pair * weights[radius + step]
    return out


def gaussian(x: np.ndarray, sigma: float, mode: str = "edge",
             axes: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Gaussian blur of each image along ``axes`` (rows 1, columns 2), cut at 4 sigma as
    SciPy cuts it; ``mode`` is np.pad's ("edge" repeats the border, "constant" adds 0)."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 / (sigma * sigma) * np.arange(-radius, radius + 1) ** 2)
    taps = taps / taps.sum()
    for axis in axes:
        x = correlate(x, taps, axis, mode)
    return x


def sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of each image at (rows, cols), shape (n, 28, 28); 0 outside. In
    float64 and in scikit-image's order of operations, as the published warps ran."""
    # A border of zeros (1 before, 2 after) and coordinates clipped into it: a point
    # outside reads only zeros, with no mask to apply.
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 2), (1, 2)), mode="constant")
    width = SIDE + 3
    rows, cols = np.clip(rows, -1, SIDE), np.clip(cols, -1, SIDE)
    top, left = np.floor(rows).astype(np.intp), np.floor(cols).astype(np.intp)
    down, right = rows - top, cols - left
    index = (np.arange(len(x)) * width * width)[:, None, None] + (top + 1) * width + left + 1
    flat = padded.reshape(-1)
    upper = (1 - right) * flat[index] + right * flat[index + 1]
    lower = (1 - right) * flat[index + width] + right * flat[index + width + 1]
    return ((1 - down) * upper + down * lower).astype(x.dtype)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    return rows, cols


def affine(x: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Each output pixel (column, row) reads the input at ``linear[i]`` times its offset
    from the centre (an inverse map, as image warps are written), bilinearly."""
    rows, cols = _grid()
    # Written as the published code has it, a c + b r + 13.5 (1 - a - b): the same last
    # bit, and so the same rounding of the pixels that fall half-way between two levels.
    a, b, c, d = (linear[:, i, j, None, None] for i in (0, 1) for j in (0, 1))
    src_cols = a * cols + b * rows + CENTRE * (1 - a - b)
    src_rows = c * cols + d * rows + CENTRE * (1 - c - d)
    return sample(x, src_rows, src_cols)


def shift(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The images moved by whole pixels (down and right for positive values), 0 filled."""
    out = np.zeros_like(x)
    height, width = SIDE - abs(rows), SIDE - abs(cols)
    out[:, max(rows, 0):max(rows, 0) + height, max(cols, 0):max(cols, 0) + width] = \
        x[:, max(-rows, 0):max(-rows, 0) + height, max(-cols, 0):max(-cols, 0) + width]
    return out


def local_shuffle(x: np.ndarray, rng: np.random.Generator, delta: int,
                  rounds: int) -> np.ndarray:
    """Glass: each pixel of rows and columns 28 - delta down to delta + 1, bottom-right
    first, swapped with probability 1/2 with the pixel some rows and columns away, each
    drawn from -delta to delta - 1 (for delta 1: up and left by 0 or 1, never down or
    right), ``rounds`` times: the published code's sweep and draws, in each image."""
    x = x.copy()
    every = np.arange(len(x))
    for _ in range(rounds):
        for row in range(SIDE - delta, delta, -1):
            for col in range(SIDE - delta, delta, -1):
                chosen = every[rng.random(len(x)) < 0.5]
                d_cols, d_rows = rng.integers(-delta, delta, (2, len(chosen)))
                here = x[chosen, row, col]
                x[chosen, row, col] = x[chosen, row + d_rows, col + d_cols]
                x[chosen, row + d_rows, col + d_cols] = here
    return x


def motion_blur(x: np.ndarray, angles: np.ndarray, radius: float, sigma: float) -> np.ndarray:
    """ImageMagick's motion blur: each pixel the mean of 2 ceil(radius) + 1 pixels trailing
    it along its image's angle (radians; 0 looks right, rows grow downwards), weighted by a
    one-sided Gaussian of ``sigma``. The taps are whole pixels (the offsets rounded half
    up), and a tap beyond the border reads the border pixel, as ImageMagick's do."""
    width = 2 * int(np.ceil(radius)) + 1
    steps = np.arange(width)
    weights = np.exp(-(steps * steps) / (2 * sigma * sigma))
    weights /= weights.sum()
    d_cols = np.ceil(steps * np.cos(angles)[:, None] - 0.5).astype(np.intp)
    d_rows = np.ceil(steps * np.sin(angles)[:, None] - 0.5).astype(np.intp)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    flat = x.reshape(-1)
    first = (np.arange(len(x)) * SIDE * SIDE)[:, None, None]
    out = np.zeros_like(x)
    for step, weight in enumerate(weights):
        tap_rows = np.clip(rows + d_rows[:, step, None, None], 0, SIDE - 1)
        tap_cols = np.clip(cols + d_cols[:, step, None, None], 0, SIDE - 1)
        out += weight * flat[first + tap_rows * SIDE + tap_cols]
    return out


def plasma(rng: np.random.Generator, count: int, decay: float, size: int = 256,
           chunk: int = 250) -> np.ndarray:
    """The top-left 28x28 of a diamond-square plasma fractal of ``size`` per image, scaled
    to [0, 1] over the whole map (as the paper crops a 256x256 cloud)."""
    out = np.empty((count, SIDE, SIDE))
    for start in range(0, count, chunk):
        maps = _diamond_square(rng, min(chunk, count - start), size, decay)
        low = maps.min(axis=(1, 2), keepdims=True)
        high = maps.max(axis=(1, 2), keepdims=True)
        out[start:start + len(maps)] = ((maps - low) / (high - low))[:, :SIDE, :SIDE]
    return out


def _diamond_square(rng, count: int, size: int, decay: float) -> np.ndarray:
    maps = np.zeros((count, size, size), np.float32)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2

        def jittered(total, shape, amount=wibble):  # the mean of four, plus noise
            noise = rng.random(shape, dtype=np.float32) * np.float32(2 * amount) - amount
            return total / 4 + np.float32(amount) * noise

        corners = maps[:, ::step, ::step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half::step, half::step] = jittered(square, square.shape)
        centres = maps[:, half::step, half::step]
        corners = maps[:, ::step, ::step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, ::step, half::step] = jittered(left, left.shape)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half::step, ::step] = jittered(top, top.shape)
        step, wibble = half, wibble / decay
    return maps
