"""The image operations MNIST-C's corruptions are made of, on whole batches at once.

Images are float arrays of shape (n, 28, 28) in [0, 1]; coordinates are (row, column) with
the image's centre at (13.5, 13.5). Everything is NumPy, vectorised over the batch, so the
15 sets of 10,000 images take seconds each, not minutes.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
CENTRE = (SIDE - 1) / 2
LINE_WIDTH = 2.3  # the paper's line profile: ink log(1 - d / 2.3) + 1 at distance d


def gaussian(x: np.ndarray, sigma: float, mode: str = "edge") -> np.ndarray:
    """Gaussian blur of each image (separable, cut at 4 sigma); borders repeat the edge."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (1, 2):
        padding = [(0, 0)] * 3
        padding[axis] = (radius, radius)
        padded = np.pad(x, padding, mode=mode)
        length = x.shape[axis]
        x = sum(weight * np.take(padded, range(k, k + length), axis=axis)
                for k, weight in enumerate(taps))
    return x


def sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of each image at (rows, cols), shape (n, 28, 28); 0 outside."""
    # A border of zeros (1 before, 2 after) and coordinates clipped into it: a point
    # outside reads only zeros, with no mask to apply.
    padded = np.pad(x.astype(np.float32), ((0, 0), (1, 2), (1, 2)))
    width = SIDE + 3
    rows, cols = np.clip(rows, -1, SIDE), np.clip(cols, -1, SIDE)
    top, left = np.floor(rows).astype(np.intp), np.floor(cols).astype(np.intp)
    down, right = (rows - top).astype(np.float32), (cols - left).astype(np.float32)
    index = (np.arange(len(x)) * width * width)[:, None, None] + (top + 1) * width + left + 1
    flat = padded.reshape(-1)
    upper = flat[index] * (1 - right) + flat[index + 1] * right
    lower = flat[index + width] * (1 - right) + flat[index + width + 1] * right
    return (upper * (1 - down) + lower * down).astype(x.dtype)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    return rows, cols


def affine(x: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Each output pixel (column, row) reads the input at ``linear[i]`` times its offset
    from the centre (an inverse map, as image warps are written), bilinearly."""
    rows, cols = _grid()
    dx, dy = cols - CENTRE, rows - CENTRE
    src_cols = CENTRE + linear[:, 0, 0, None, None] * dx + linear[:, 0, 1, None, None] * dy
    src_rows = CENTRE + linear[:, 1, 0, None, None] * dx + linear[:, 1, 1, None, None] * dy
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
    """Glass: each pixel, bottom-right to top-left, swapped with probability 1/2 with a
    random neighbour at most ``delta`` away (the same sweep in every image, its own draws)."""
    x = x.copy()
    count = len(x)
    every = np.arange(count)
    for _ in range(rounds):
        for row in range(SIDE - 1 - delta, delta - 1, -1):
            for col in range(SIDE - 1 - delta, delta - 1, -1):
                chosen = every[rng.random(count) < 0.5]
                dr, dc = rng.integers(-delta, delta + 1, (2, len(chosen)))
                here = x[chosen, row, col]
                x[chosen, row, col] = x[chosen, row + dr, col + dc]
                x[chosen, row + dr, col + dc] = here
    return x


def motion_blur(x: np.ndarray, angles: np.ndarray, radius: int, sigma: float) -> np.ndarray:
    """Each image averaged with copies of itself trailing up to ``radius`` pixels along its
    angle, weighted by a one-sided Gaussian: the streak of a moving camera."""
    rows, cols = _grid()
    weights = np.exp(-0.5 * (np.arange(radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    out = np.zeros_like(x)
    for step, weight in enumerate(weights):
        dr = (step * np.sin(angles))[:, None, None]
        dc = (step * np.cos(angles))[:, None, None]
        out += weight * sample(x, rows + dr, cols + dc)
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


def segments(c0: np.ndarray, r0: np.ndarray, c1: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """One line per image from (r0, c0) to (r1, c1) (arrays of n), drawn with the paper's
    profile: full ink on the line, fading to none 1.4 pixels away."""
    rows, cols = _grid()
    c0, r0, c1, r1 = (np.asarray(v, float)[:, None, None] for v in (c0, r0, c1, r1))
    length = np.maximum(np.hypot(c1 - c0, r1 - r0), 1e-9)
    along = np.clip(((cols - c0) * (c1 - c0) + (rows - r0) * (r1 - r0)) / length ** 2, 0, 1)
    distance = np.hypot(cols - (c0 + along * (c1 - c0)), rows - (r0 + along * (r1 - r0)))
    distance = np.minimum(distance, LINE_WIDTH - 1e-10)
    return np.clip(np.log(1 - distance / LINE_WIDTH) + 1, 0, 1)


def zigzags(rng: np.random.Generator, count: int, tooth: float = 2.0) -> np.ndarray:
    """A zigzag per image from column 2 to 25, along a baseline tilted by up to 5 rows,
    with teeth ``tooth`` pixels long and high."""
    start = rng.integers(0, 27, count).astype(float)
    end = start + rng.integers(-5, 5, count)
    angle = np.arctan2(end - start, 23.0)
    length = 23.0 / np.cos(angle)
    # Vertices along the baseline: 0, then every 2 teeth, alternately above and below.
    steps = int(np.ceil(length.max() / (2 * tooth))) + 1
    along = np.concatenate([np.zeros((count, 1)),
                            (2 * np.arange(steps) + 1) * tooth * np.ones((count, 1))], axis=1)
    across = np.concatenate([np.zeros((count, 1)),
                             np.tile(tooth * (-1.0) ** np.arange(steps), (count, 1))], axis=1)
    beyond = along > length[:, None]  # past the end: the line stops on its baseline
    along, across = np.where(beyond, length[:, None], along), np.where(beyond, 0, across)
    cols = 2 + along * np.cos(angle)[:, None] - across * np.sin(angle)[:, None]
    rows = start[:, None] + along * np.sin(angle)[:, None] + across * np.cos(angle)[:, None]
    ink = np.zeros((count, SIDE, SIDE))
    for i in range(steps):
        ink = np.maximum(ink, segments(cols[:, i], rows[:, i], cols[:, i + 1], rows[:, i + 1]))
    return ink


def canny(x: np.ndarray, sigma: float, low: float, high: float) -> np.ndarray:
    """Canny's edges (1 on an edge, else 0): smooth, Sobel gradients, keep only local
    maxima across the edge, then the pixels above ``high`` and those above ``low``
    joined to them."""
    smooth = gaussian(x, sigma, mode="constant") / gaussian(np.ones_like(x), sigma,
                                                            mode="constant")
    padded = np.pad(smooth, ((0, 0), (1, 1), (1, 1)), mode="edge")

    def at(dr, dc):
        return padded[:, 1 + dr:1 + dr + SIDE, 1 + dc:1 + dc + SIDE]

    d_rows = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    d_cols = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    magnitude = np.hypot(d_rows, d_cols)
    # The gradient's direction in four sectors: compare with the two neighbours along it.
    sector = np.round(np.arctan2(d_rows, d_cols) / (np.pi / 4)).astype(int) % 4
    padded_mag = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    peak = np.zeros_like(magnitude, bool)
    for index, (dr, dc) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded_mag[:, 1 + dr:1 + dr + SIDE, 1 + dc:1 + dc + SIDE]
        behind = padded_mag[:, 1 - dr:1 - dr + SIDE, 1 - dc:1 - dc + SIDE]
        peak |= (sector == index) & (magnitude >= ahead) & (magnitude >= behind)
    peak[:, [0, -1], :] = peak[:, :, [0, -1]] = False  # no edges on the border
    weak = peak & (magnitude >= low)
    edges = weak & (magnitude >= high)
    while True:  # hysteresis: grow the strong edges along the weak ones, 8-connected
        grown = np.pad(edges, ((0, 0), (1, 1), (1, 1)))
        around = np.zeros_like(edges)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                around |= grown[:, 1 + dr:1 + dr + SIDE, 1 + dc:1 + dc + SIDE]
        wider = weak & around
        if np.array_equal(wider, edges):
            return edges.astype(float)
        edges = wider
