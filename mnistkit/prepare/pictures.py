"""Turn a user's picture of a digit into a 28x28 MNIST-style input.

MNIST digits are light on black, cropped, scaled to fit a 20x20 box with their aspect
ratio kept, and placed in 28x28 so that their centre of mass is in the middle. Pictures
are prepared the same way; on the way, uneven lighting is flattened, specks of noise and
the remains of frames along the edges are dropped (mnistkit.prepare.ink), thin pen strokes
are thickened to MNIST's stroke width and strokes are made full in their middle, as MNIST's
are. A picture of a number gives each of its digits, left to right (split_digits; where one
digit ends, mnistkit.prepare.pieces). predict.py and draw.py's page both prepare pictures
here.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistkit.prepare.ink import digit_mask, ink_of, resize
from mnistkit.prepare.pieces import digit_pieces

WORK_SIDE = 1024  # larger pictures are shrunk first: a digit needs no more
BOX, CANVAS = 20, 28
MAX_PIXELS = 40_000_000  # a larger picture is a decompression bomb, not a digit
STROKE = 0.12  # MNIST's strokes are about this fraction of the digit's height
FULL = 0.7  # inked pixels above this quantile become full: then about 40% are, as in MNIST


class ImageError(Exception):
    """The file is not a picture we can read, or holds no digit."""


def read_picture(path: str | Path | BinaryIO, name: str | None = None,
                 max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """The picture as grayscale floats in [0, 1] (first frame, EXIF rotation applied).

    ``path`` may be an open binary file; errors name it as ``name``. A picture of more than
    ``max_pixels`` pixels is refused before it is unpacked (a decompression bomb)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = str(path) if name is None else name
    if isinstance(path, (str, Path)) and Path(path).exists() and not Path(path).is_file():
        raise ImageError(f"{name}: not a regular file")  # a FIFO would block for ever
    try:
        with Image.open(path) as image:
            if max_pixels and image.width * image.height > max_pixels:
                raise ImageError(f"{name}: too many pixels ({image.width}x{image.height}; "
                                 f"at most {max_pixels:,} are read)")
            image.seek(0)
            image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced size
            image = ImageOps.exif_transpose(image)
            image.load()
    except Image.DecompressionBombError as error:  # PIL's own limit, above max_pixels
        raise ImageError(f"{name}: too many pixels ({error})") from None
    # Pillow raises SyntaxError for some broken PNG chunks (a zeroed tail).
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError) as error:
        reason = " ".join(str(error).replace(f" {path!r}", "").split()) or type(error).__name__
        raise ImageError(f"{name}: not a readable image ({reason})") from None
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        if image.getchannel("A").getextrema()[0] < 255:  # a canvas is opaque: skip the work
            return _flatten_transparency(image)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def picture_digits(source: str | Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """Every digit of a picture, left to right, as MNIST stores its images: uint8 0-255 of
    shape (n, 28, 28). The one way from a picture file to model inputs."""
    digits = split_digits(read_picture(source, name=name))
    return np.round(np.stack(digits) * 255).astype(np.uint8)


def prepare_digit(gray: np.ndarray) -> np.ndarray:
    """A grayscale picture of one digit as a 28x28 float32 MNIST input in [0, 1]."""
    ink = ink_of(gray)
    keep = digit_mask(ink)
    if not keep.any():
        raise ImageError("no digit found (the picture is blank)")
    return _prepare(ink, keep)


def split_digits(gray: np.ndarray) -> list[np.ndarray]:
    """Each digit of a picture of a number (written apart, one line), left to right, prepared
    on its own as ``prepare_digit`` prepares one: a list of 28x28 float32 inputs in [0, 1]."""
    ink = ink_of(gray)
    keep = digit_mask(ink)
    if not keep.any():
        raise ImageError("no digit found (the picture is blank)")
    digits = []
    for piece in digit_pieces(keep, ink):
        part = np.zeros_like(keep)
        part[:, piece.start:piece.stop] = keep[:, piece.start:piece.stop]
        digits.append(_prepare(ink, part))
    return digits


def _prepare(ink: np.ndarray, keep: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(keep)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    # One pixel wider than the mask, to keep the soft edges of the strokes.
    crop = ink[top:bottom, left:right] * _dilate(keep[top:bottom, left:right])
    crop = _thicken(_shrink_keeping_strokes(crop, 5 * BOX))
    return _centre_by_mass(_saturate(_resize_long_side(crop, BOX)))


def _shrink_keeping_strokes(image: np.ndarray, side: int) -> np.ndarray:
    """Fit the long side to ``side``. Shrinking by averaging turns a 1-pixel line of a large
    drawing into a faint dotted one; the maximum of each block keeps it whole and bright,
    to be thickened after."""
    factor = max(image.shape) // side
    if factor >= 2:
        height, width = -(-image.shape[0] // factor), -(-image.shape[1] // factor)
        padded = np.zeros((height * factor, width * factor), image.dtype)
        padded[:image.shape[0], :image.shape[1]] = image
        image = padded.reshape(height, factor, width, factor).max(axis=(1, 3))
    return _resize_long_side(image, side)


def _flatten_transparency(rgba) -> np.ndarray:
    """Drawings on a transparent canvas: put them on a background their strokes contrast with."""
    pixels = np.asarray(rgba, dtype=np.float32) / 255
    alpha = pixels[..., 3]
    luminance = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    strokes = luminance[alpha > 0.5]
    background = 1.0 if strokes.size and strokes.mean() < 0.5 else 0.0
    return alpha * luminance + (1 - alpha) * background


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


def _saturate(digit: np.ndarray) -> np.ndarray:
    """Strokes full in their middle, as MNIST's are: there about 40% of a digit's inked
    pixels are at full intensity and the rest are its soft edges, where a stroke shrunk to
    20 pixels is gray throughout. The strongest (1 - FULL) of the inked pixels become full,
    the others keep their proportion to them."""
    inked = digit[digit > 0.05 * digit.max()]
    if inked.size == 0:
        return digit
    return np.clip(digit / np.quantile(inked, FULL), 0, 1).astype(np.float32)


def _resize_long_side(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape)
    return resize(image, (max(1, round(image.shape[0] * scale)),
                           max(1, round(image.shape[1] * scale))))


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
