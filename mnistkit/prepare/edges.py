"""Canny's edge detector as MNIST-C ran it: scikit-image's ``feature.canny`` of 2019
(0.14 and 0.15), on a whole batch of (n, 28, 28) images at once, in NumPy alone.

Each step does the floating-point operations of that version in its order (SciPy's filters,
the interpolated comparison across the edge, the later direction sector winning a tie),
because canny_edges is deterministic: the published edges are matched pixel for pixel, and
a last-bit difference in the gradient can add or drop an edge pixel where two neighbours
have the same strength.
"""

from __future__ import annotations

import numpy as np

from mnistkit.prepare.corruption_ops import correlate, gaussian

DERIVATIVE = np.array([-1.0, 0.0, 1.0])  # Sobel: a central difference across...
SMOOTHING = np.array([1.0, 2.0, 1.0])  # ...and a small blur along, reflected at the border


def canny(x: np.ndarray, sigma: float = 1.0, low: float = 0.1,
          high: float = 0.2) -> np.ndarray:
    """The edges of each image (1 on an edge, else 0): smoothed by a Gaussian of ``sigma``
    (renormalised near the border), Sobel gradients, only the maxima across the edge, then
    the pixels of at least ``high`` and those of at least ``low`` 8-connected to them."""
    x = np.asarray(x, np.float64)
    # The blur of the image over the blur of ones: the zeros beyond the border do not
    # darken it (scikit-image's mask correction, with its epsilon).
    smooth = (gaussian(x, sigma, mode="constant")
              / (gaussian(np.ones_like(x), sigma, mode="constant") + np.finfo(float).eps))
    d_cols = correlate(correlate(smooth, DERIVATIVE, 2, "symmetric"), SMOOTHING, 1,
                       "symmetric")
    d_rows = correlate(correlate(smooth, DERIVATIVE, 1, "symmetric"), SMOOTHING, 2,
                       "symmetric")
    magnitude = np.hypot(d_rows, d_cols)
    inside = np.zeros(x.shape, bool)
    inside[:, 1:-1, 1:-1] = True  # no edge on the outer ring of pixels
    peaks = _maxima_across(d_rows, d_cols, magnitude) & inside & (magnitude > 0)
    return _hysteresis(peaks & (magnitude >= low), peaks & (magnitude >= high)).astype(float)


def _neighbour(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``values`` at (row + rows, col + cols); 0 off the image (never read: the border
    pixels are no edges)."""
    padded = np.pad(values, ((0, 0), (1, 1), (1, 1)), mode="constant")
    return padded[:, 1 + rows:1 + rows + values.shape[1], 1 + cols:1 + cols + values.shape[2]]


# The four sectors of the gradient's direction, in scikit-image's order: the signs of
# (d_rows, d_cols) that fall in it, whether |d_rows| >= |d_cols| (else <=), and the two
# neighbours mixed on each side: (straight, diagonal) ahead, then behind.
SECTORS = (
    ((1, 1), True, ((1, 0), (1, 1)), ((-1, 0), (-1, -1))),
    ((1, 1), False, ((0, 1), (1, 1)), ((0, -1), (-1, -1))),
    ((-1, 1), False, ((0, 1), (-1, 1)), ((0, -1), (1, -1))),
    ((-1, 1), True, ((-1, 0), (-1, 1)), ((1, 0), (1, -1))),
)


def _maxima_across(d_rows: np.ndarray, d_cols: np.ndarray,
                   magnitude: np.ndarray) -> np.ndarray:
    """Pixels at least as strong as the strength interpolated between two neighbours on
    each side across the edge; where a pixel is in two sectors (a tie), the later decides."""
    abs_rows, abs_cols = np.abs(d_rows), np.abs(d_cols)
    maxima = np.zeros(magnitude.shape, bool)
    with np.errstate(divide="ignore", invalid="ignore"):  # outside the sector: unused
        for (sign_rows, sign_cols), steep, ahead, behind in SECTORS:
            same = (sign_rows * d_rows >= 0) & (sign_cols * d_cols >= 0)
            flipped = (sign_rows * d_rows <= 0) & (sign_cols * d_cols <= 0)
            if steep:
                chosen = (same | flipped) & (abs_rows >= abs_cols)
                weight = abs_cols / abs_rows
            else:
                chosen = (same | flipped) & (abs_rows <= abs_cols)
                weight = abs_rows / abs_cols
            beats = [_neighbour(magnitude, *diagonal) * weight
                     + _neighbour(magnitude, *straight) * (1 - weight) <= magnitude
                     for straight, diagonal in (ahead, behind)]
            maxima = np.where(chosen, beats[0] & beats[1], maxima)
    return maxima


def _hysteresis(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The ``weak`` pixels 8-connected through weak pixels to a ``strong`` one: the same
    as keeping each 8-connected piece of ``weak`` that holds a strong pixel."""
    edges = weak & strong
    while True:
        grown = np.zeros_like(edges)
        for rows in (-1, 0, 1):
            for cols in (-1, 0, 1):
                grown |= _neighbour(edges, rows, cols)
        grown &= weak
        if np.array_equal(grown, edges):
            return edges
        edges = grown
