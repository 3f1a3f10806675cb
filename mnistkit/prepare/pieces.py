"""Where one digit ends and the next begins in a picture of a number.

Digits written apart on one line are told apart by the columns without ink between them
(mnistkit.prepare.pictures prepares each on its own). But one digit is often drawn in
strokes that leave such gaps, and it must never come back as several digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PEN_LIFT = 2  # columns: a gap narrower than this is no gap
# In fractions of the tallest piece's height:
PART = 0.7  # a piece shorter than this is part of a digit (the digits of a number are alike)
NEAR = 0.5  # ... and joins a neighbour this close; farther and light, it is a speck
GAP = 0.12  # the digits of a number are at least this far apart
SPECK = 0.08  # a short piece with less ink than this share of the heaviest, far off, is a speck


@dataclass
class Piece:
    """Columns start:stop of a picture with ink, the rows top:bottom it spans, its ink."""

    start: int
    stop: int
    top: int
    bottom: int
    mass: float

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def joined(self, other: Piece) -> Piece:
        return Piece(min(self.start, other.start), max(self.stop, other.stop),
                     min(self.top, other.top), max(self.bottom, other.bottom),
                     self.mass + other.mass)


def digit_pieces(keep: np.ndarray, ink: np.ndarray) -> list[Piece]:
    """The columns of each digit, left to right. Digits are told apart by columns without
    ink between them; but one digit is often drawn in strokes that leave such gaps (a flag
    or base beside a 1, the bar of a 5, a 4 in two strokes, a 0 in two arcs), so a gap
    alone does not make a new digit: a piece much shorter than the tallest is part of its
    nearer neighbour, and tall pieces closer than GAP of the height whose union is no wider
    than it is tall are one digit. Specks, small and far, are dropped."""
    pieces = _column_pieces(keep, ink)
    height = max(piece.height for piece in pieces)
    heaviest = max(piece.mass for piece in pieces)
    pieces = [p for p in pieces if p.mass >= SPECK * heaviest or p.height >= PART * height
              or _gap_to_nearest(pieces, p) < NEAR * height]
    while len(pieces) > 1:
        pair = _pair_to_join(pieces, height)
        if pair is None:
            break
        pieces[pair] = pieces[pair].joined(pieces.pop(pair + 1))
    return pieces


def _column_pieces(keep: np.ndarray, ink: np.ndarray) -> list[Piece]:
    used = keep.any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], used.astype(np.int8), [0]])))
    pieces = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        rows = np.flatnonzero(keep[:, start:stop].any(axis=1))
        piece = Piece(int(start), int(stop), int(rows[0]), int(rows[-1]) + 1,
                      float(ink[:, start:stop][keep[:, start:stop]].sum()))
        if pieces and start - pieces[-1].stop < PEN_LIFT:  # a pen lifted: no gap at all
            pieces[-1] = pieces[-1].joined(piece)
        else:
            pieces.append(piece)
    return pieces


def _gap_to_nearest(pieces: list[Piece], piece: Piece) -> float:
    gaps = [max(other.start - piece.stop, piece.start - other.stop)
            for other in pieces if other is not piece]
    return min(gaps, default=np.inf)


def _pair_to_join(pieces: list[Piece], height: int) -> int | None:
    """The index i of the closest pair (i, i + 1) that is one digit, or None."""
    gaps = [b.start - a.stop for a, b in zip(pieces, pieces[1:], strict=False)]
    for i in np.argsort(gaps, kind="stable"):
        a, b = pieces[i], pieces[i + 1]
        short = min(a.height, b.height) < PART * height
        union = a.joined(b)
        if (short and gaps[i] < NEAR * height) or (
                gaps[i] < GAP * height and union.stop - union.start <= union.height):
            return int(i)
    return None
