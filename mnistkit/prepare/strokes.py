"""The lines MNIST-C draws over digits (dotted_line, zigzag), on a batch at once.

A line there is not a stroke of even width: ink log(1 - d / 2.3) + 1 at a *vertical*
distance d from the line (so steep pieces come out thinner), and only in the columns from
floor(start) up to but not including ceil(end). That is how the published code draws them;
the amount of ink, and so how much a line hides the digit, follows from it.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
LINE_WIDTH = 2.3  # the paper's profile: full ink on the line, none from 1.45 pixels away
ZIGZAG_COLUMNS = (2, 25)  # where a zigzag's baseline starts and ends
TOOTH = 2.0  # a zigzag's tooth: this long along the baseline, this high across it
DASH = 2  # a dotted line: this many columns of ink, then as many of none


def _grid() -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    return rows, cols


def lines(c0: np.ndarray, r0: np.ndarray, c1: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """One line per image, from (r0, c0) to (r1, c1) (arrays of n; columns c0 <= c1), as
    ink of shape (n, 28, 28); a vertical one (c0 == c1) draws nothing."""
    rows, cols = _grid()
    c0, r0, c1, r1 = (np.asarray(v, float).reshape(-1, 1, 1) for v in (c0, r0, c1, r1))
    run = c1 - c0
    slope = (r1 - r0) / np.where(run == 0, 1, run)
    distance = np.minimum(np.abs(rows - (slope * (cols - c0) + r0)), LINE_WIDTH - 1e-10)
    ink = np.clip(np.log(1 - distance / LINE_WIDTH) + 1, 0, 1)
    drawn = (cols >= np.floor(c0)) & (cols < np.ceil(c1)) & (run != 0)
    return np.where(drawn, ink, 0.0)


def dotted_lines(rng: np.random.Generator, count: int) -> np.ndarray:
    """A line per image from the left edge (column 0) to column 27, each end on a random
    row of 0-26, kept only in every other pair of columns: 2-3, 6-7, ... 26 (column 27 is
    past the line's last drawn column)."""
    ends = rng.integers(0, 27, (count, 2)).astype(float)
    ink = lines(np.zeros(count), ends[:, 0], np.full(count, SIDE - 1.0), ends[:, 1])
    dashes = (np.arange(SIDE) // DASH) % 2 == 1
    return ink * dashes


def zigzag_vertices(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The corners of each zigzag (columns, rows; shape (n, k)) along a baseline from
    (start, 2) towards (end, 25): teeth TOOTH long and high, alternately below and above
    (rows grow downwards), as many as fit, then a last corner at the baseline's full length,
    a little off it (the published code's last-corner rule, kept for its ink)."""
    first, last = ZIGZAG_COLUMNS
    angle = np.arctan((end - start) / (last - first))
    length = (last - first) / np.cos(angle)
    fitting = ((length - TOOTH) // (2 * TOOTH)).astype(int) + 1  # (2i + 1) TOOTH <= length
    tooth = np.minimum(np.arange(fitting.max())[None, :], fitting[:, None] - 1)
    # An image with fewer teeth repeats its last corner: a piece of no length draws nothing.
    along = np.concatenate([np.zeros((len(start), 1)), (2 * tooth + 1) * TOOTH], 1)
    across = np.concatenate([np.zeros((len(start), 1)), TOOTH * (-1.0) ** tooth], 1)
    whole = 2 * TOOTH * (length // (2 * TOOTH))  # the length of the whole tooth pairs
    short = length != whole
    # Off the baseline by the last tooth's height over twice what is left past the pairs.
    tail = across[:, -1] / (2 * np.where(short, length - whole, 1))
    along = np.concatenate([along, np.where(short, length, along[:, -1])[:, None]], 1)
    across = np.concatenate([across, np.where(short, tail, across[:, -1])[:, None]], 1)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return first + cos * along - sin * across, start[:, None] + sin * along + cos * across


def zigzags(rng: np.random.Generator, count: int) -> np.ndarray:
    """A zigzag per image: its baseline starts on a random row of 0-26 at column 2 and
    ends 5 rows higher to 4 lower at column 25. The pieces' ink adds up (then is clipped)
    where they meet."""
    start = rng.integers(0, 27, count).astype(float)
    end = start + rng.integers(-5, 5, count)
    cols, rows = zigzag_vertices(start, end)
    ink = np.zeros((count, SIDE, SIDE))
    for i in range(cols.shape[1] - 1):
        ink += lines(cols[:, i], rows[:, i], cols[:, i + 1], rows[:, i + 1])
    return ink
