"""Turn a user's picture of a digit into a 28x28 MNIST-style input.

MNIST digits are light on black, cropped, scaled to fit a 20x20 box with their aspect
ratio kept, and placed in 28x28 so that their centre of mass is in the middle. Pictures
are prepared the same way; on the way, uneven lighting is flattened, specks of noise are
dropped and thin pen strokes are thickened to MNIST's stroke width.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

WORK_SIDE = 1024  # larger pictures are shrunk first: a digit needs no more
BOX, CANVAS = 20, 28
STROKE = 0.12  # MNIST's strokes are about this fraction of the digit's height


class ImageError(Exception):
    """The file is not a picture we can read, or holds no digit."""


def read_picture(path: str | Path) -> np.ndarray:
    """The picture as grayscale floats in [0, 1] (first frame, EXIF rotation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, EOFError,
            Image.DecompressionBombError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ImageError(f"{path}: not a readable image ({reason})") from None
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _flatten_transparency(image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def prepare_digit(gray: np.ndarray) -> np.ndarray:
    """A grayscale picture of one digit as a 28x28 float32 MNIST input in [0, 1]."""
    ink = _ink(gray)
    keep = _digit_mask(ink)
    rows, columns = np.nonzero(keep)
    if len(rows) == 0:
        raise ImageError("no digit found (the picture is blank)")
    crop = ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    # One pixel wider than the mask, to keep the soft edges of the strokes.
    crop = crop * _dilate(keep[rows.min():rows.max() + 1, columns.min():columns.max() + 1])
    crop = _thicken(_resize_long_side(crop, 5 * BOX))
    return _centre_by_mass(_resize_long_side(crop, BOX))


def _flatten_transparency(rgba) -> np.ndarray:
    """Drawings on a transparent canvas: put them on a background their strokes contrast with."""
    pixels = np.asarray(rgba, dtype=np.float32) / 255
    alpha = pixels[..., 3]
    luminance = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    strokes = luminance[alpha > 0.5]
    background = 1.0 if strokes.size and strokes.mean() < 0.5 else 0.0
    return alpha * luminance + (1 - alpha) * background


def _ink(gray: np.ndarray) -> np.ndarray:
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
    small = _resize(gray, (min(64, gray.shape[0]), min(64, gray.shape[1])))
    terms = _quadratic_terms(small.shape).reshape(-1, 6)
    values = small.reshape(-1)
    chosen = np.ones(values.shape, bool)
    for _ in range(4):
        coefficients, *_ = np.linalg.lstsq(terms[chosen], values[chosen], rcond=None)
        residual = np.abs(values - terms @ coefficients)
        chosen = residual <= max(3 * np.median(residual), 1e-3)
    return (_quadratic_terms(gray.shape) @ coefficients).astype(np.float32)


def _quadratic_terms(shape: tuple[int, int]) -> np.ndarray:
    y, x = np.mgrid[-1:1:complex(0, shape[0]), -1:1:complex(0, shape[1])]
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels of the digit: above Otsu's threshold, in pieces large enough not to be noise."""
    mask = ink > _otsu(ink)
    scale = max(1, int(np.ceil(max(mask.shape) / 160)))  # label pieces on a coarse grid
    height, width = -(-mask.shape[0] // scale), -(-mask.shape[1] // scale)
    padded = np.zeros((height * scale, width * scale), bool)
    padded[:mask.shape[0], :mask.shape[1]] = mask
    coarse = padded.reshape(height, scale, width, scale).any(axis=(1, 3))
    labels, sizes = _components(coarse)
    if not sizes:
        return mask
    keep = np.flatnonzero(np.array(sizes) >= 0.1 * max(sizes)) + 1
    kept = np.isin(labels, keep).repeat(scale, 0).repeat(scale, 1)
    return mask & kept[:mask.shape[0], :mask.shape[1]]


def _otsu(values: np.ndarray) -> float:
    histogram, edges = np.histogram(values, bins=64, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * centres)
    total, total_mean = weight[-1], mean[-1]
    between = np.zeros_like(centres)
    valid = (weight > 0) & (weight < total)
    w = weight[valid]
    between[valid] = (total_mean * w / total - mean[valid]) ** 2 / (w * (total - w))
    return float(max(centres[int(np.argmax(between))], 0.15))


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """4-connected pieces of a small boolean grid: a label per cell and each piece's size."""
    labels = np.zeros(mask.shape, np.int32)
    sizes: list[int] = []
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        sizes.append(0)
        labels[start] = len(sizes)
        queue = deque([start])
        while queue:
            row, column = queue.popleft()
            sizes[-1] += 1
            for r, c in ((row + 1, column), (row - 1, column), (row, column + 1),
                         (row, column - 1)):
                if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] \
                        and not labels[r, c]:
                    labels[r, c] = len(sizes)
                    queue.append((r, c))
    return labels, sizes


def _dilate(image: np.ndarray) -> np.ndarray:
    """Each pixel the maximum of itself and its four neighbours: strokes one pixel wider."""
    grown = image.copy()
    grown[1:] = np.maximum(grown[1:], image[:-1])
    grown[:-1] = np.maximum(grown[:-1], image[1:])
    grown[:, 1:] = np.maximum(grown[:, 1:], image[:, :-1])
    grown[:, :-1] = np.maximum(grown[:, :-1], image[:, 1:])
    return grown


def _thicken(digit: np.ndarray) -> np.ndarray:
    """Widen strokes much thinner than MNIST's (a pen on paper), estimated as 2*area/perimeter."""
    mask = digit > 0.5
    area = mask.sum()
    perimeter = (np.count_nonzero(np.diff(mask, axis=0)) + np.count_nonzero(np.diff(mask, axis=1)))
    if area == 0 or perimeter == 0:
        return digit
    width = 2 * area / perimeter
    wanted = STROKE * max(digit.shape)
    steps = int(round((wanted - width) / 2))
    for _ in range(max(0, min(steps, 8))):
        digit = _dilate(digit)
    return digit


def _resize_long_side(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape)
    return _resize(image, (max(1, round(image.shape[0] * scale)),
                           max(1, round(image.shape[1] * scale))))


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.LANCZOS if min(shape) > 1 else Image.Resampling.BOX)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, None)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place the digit in a 28x28 canvas with its centre of mass at the centre, as MNIST does."""
    digit = digit / digit.max() if digit.max() > 0 else digit
    rows, columns = np.indices(digit.shape)
    mass = digit.sum()
    top = int(round(CANVAS / 2 - (rows * digit).sum() / mass))
    left = int(round(CANVAS / 2 - (columns * digit).sum() / mass))
    top = min(max(top, 0), CANVAS - digit.shape[0])
    left = min(max(left, 0), CANVAS - digit.shape[1])
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = np.clip(digit, 0, 1)
    return canvas
