"""Where the ink is in a picture: lighting flattened, polarity found, noise dropped.

The first step of preparing a picture (mnistkit.prepare.pictures): an ink map in [0, 1]
whichever way round the picture is (dark on light or light on dark), and the mask of the
digit's pixels.
"""

from __future__ import annotations

import numpy as np

EDGE = 0.06  # a line this close to a side of the picture (a share of it) may be a frame
FRAME = 0.6  # ... if it runs along this share of the side at least


def ink_of(gray: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, in [0, 1]: the picture's departure from its background,
    on whichever side (darker or lighter) the digit departs most."""
    departure = gray - _background_surface(gray)
    smooth = _box_mean(departure)  # lone noisy pixels must not decide polarity or scale
    ink = -departure if -smooth.min() > smooth.max() else departure
    peak = max(-smooth.min(), smooth.max())
    return np.clip(ink / peak, 0, 1) if peak > 0 else np.zeros_like(gray)


def _box_mean(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image, 1, mode="edge")
    return sum(padded[r:r + image.shape[0], c:c + image.shape[1]]
               for r in range(3) for c in range(3)) / 9


def _background_surface(gray: np.ndarray) -> np.ndarray:
    """A smooth quadratic surface fitted to the background, so that light falling unevenly
    on paper is not taken for ink. The digit is a minority of the pixels: the fit is
    repeated without the pixels that stand out from it."""
    # Averaged over boxes: the fit wants the mean brightness, not sharp edges (and Lanczos
    # took 1.6 ms of a pad drawing's 8).
    small = resize(gray, (min(64, gray.shape[0]), min(64, gray.shape[1])), average=True)
    terms = _quadratic_terms(small.shape).reshape(-1, 6)
    values = small.reshape(-1)
    chosen = np.ones(values.shape, bool)
    for _ in range(4):
        # The normal equations of the least-squares fit: a 6x6 solve, where lstsq's SVD of
        # the 4096x6 matrix took 10 ms here, too slow for a page that reads as one draws.
        chosen_terms = terms[chosen]
        coefficients = np.linalg.solve(chosen_terms.T @ chosen_terms + 1e-9 * np.eye(6),
                                       chosen_terms.T @ values[chosen])
        residual = np.abs(values - terms @ coefficients)
        chosen = residual <= max(3 * np.median(residual), 1e-3)
    y = np.linspace(-1, 1, gray.shape[0], dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, gray.shape[1], dtype=np.float32)[None, :]
    c = coefficients.astype(np.float32)
    return c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * x * y + c[5] * y * y


def _quadratic_terms(shape: tuple[int, int]) -> np.ndarray:
    y, x = np.mgrid[-1:1:complex(0, shape[0]), -1:1:complex(0, shape[1])]
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels of the digit: above Otsu's threshold, in pieces large enough not to be noise,
    without lines along the picture's edges (what is left of a frame drawn around the digit
    or of the square of a form it was cut out of) unless nothing else is there."""
    mask = ink > _otsu(ink)
    scale = max(1, int(np.ceil(max(mask.shape) / 80)))  # label pieces on a coarse grid
    labels, sizes = _components(_coarse(mask, scale))
    if not sizes:
        return mask
    sizes = np.array(sizes)
    frames = _along_edges(labels, len(sizes))
    if (~frames).any() and sizes[~frames].max() >= 0.2 * sizes.max():  # else frames are all
        sizes = np.where(frames, 0, sizes)
    chosen = sizes >= max(1, 0.1 * sizes.max())
    kept = np.isin(labels, np.flatnonzero(chosen) + 1).repeat(scale, 0).repeat(scale, 1)
    return mask & kept[:mask.shape[0], :mask.shape[1]]


def _coarse(mask: np.ndarray, scale: int) -> np.ndarray:
    """Cells of scale x scale pixels, each on where any of its pixels is."""
    height, width = -(-mask.shape[0] // scale), -(-mask.shape[1] // scale)
    padded = np.zeros((height * scale, width * scale), bool)
    padded[:mask.shape[0], :mask.shape[1]] = mask
    return padded.reshape(height, scale, width, scale).any(axis=(1, 3))


def _along_edges(labels: np.ndarray, count: int) -> np.ndarray:
    """For each piece 1..count: whether it is a line along the picture's edges, nearly all
    within EDGE of a side and running along FRAME of it at least (a frame's remains run
    along the whole side; the bar of a 5 drawn apart at the top of a tight crop does not)."""
    height, width = labels.shape
    band = np.zeros(labels.shape, bool)
    rows, columns = max(1, round(EDGE * height)), max(1, round(EDGE * width))
    band[:rows], band[-rows:], band[:, :columns], band[:, -columns:] = True, True, True, True
    inside = np.bincount(labels[band], minlength=count + 1)[1:]
    total = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    along = np.zeros(count, bool)
    for index in np.flatnonzero(inside >= 0.9 * total):
        cells_rows, cells_columns = np.nonzero(labels == index + 1)
        along[index] = (np.ptp(cells_rows) + 1 >= FRAME * height
                        or np.ptp(cells_columns) + 1 >= FRAME * width)
    return along


def _otsu(values: np.ndarray) -> float:
    bins = np.minimum((np.clip(values, 0, 1) * 64).astype(np.int32), 63)
    histogram = np.bincount(bins.ravel(), minlength=64)  # np.histogram is 20x slower
    centres = (np.arange(64) + 0.5) / 64
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * centres)
    total, total_mean = weight[-1], mean[-1]
    between = np.zeros_like(centres)
    valid = (weight > 0) & (weight < total)
    w = weight[valid]
    between[valid] = (total_mean * w / total - mean[valid]) ** 2 / (w * (total - w))
    return float(max(centres[int(np.argmax(between))], 0.15))


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected pieces of a small boolean grid (a thin diagonal line crosses cells that
    only touch at corners): a label per cell (0 off the mask, else 1, 2, ...) and each
    piece's size. Each cell takes the smallest cell number among its neighbours, and labels
    jump along the chain they point to, so a long winding stroke needs few rounds."""
    height, width = mask.shape
    none = mask.size
    label = np.where(mask, np.arange(mask.size).reshape(mask.shape), none)
    while True:
        padded = np.pad(label, 1, constant_values=none)
        smallest = np.minimum.reduce([padded[r:r + height, c:c + width]
                                      for r in range(3) for c in range(3)])
        smallest = np.where(mask, smallest, none).ravel()
        on = smallest < none
        smallest[on] = smallest[smallest[on]]  # pointer jumping
        smallest = smallest.reshape(mask.shape)
        if np.array_equal(smallest, label):
            break
        label = smallest
    roots, inverse, sizes = np.unique(label[mask], return_inverse=True, return_counts=True)
    labels = np.zeros(mask.shape, np.int32)
    labels[mask] = inverse + 1
    return labels, [int(size) for size in sizes[:len(roots)]]


def resize(image: np.ndarray, shape: tuple[int, int], average: bool = False) -> np.ndarray:
    """``image`` (floats) resized to ``shape`` (rows, columns), no negatives: Lanczos, or
    the mean of each box with ``average``."""
    from PIL import Image

    sharp = min(shape) > 1 and not average
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.LANCZOS if sharp else Image.Resampling.BOX)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, None)
