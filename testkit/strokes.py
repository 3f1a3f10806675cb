"""Digits as pen strokes, the way a person draws them: MNIST test digits traced along the
middle of their strokes (thinned to 1-pixel skeletons, then walked as polylines).

Used by the browser tests (pointer moves on the drawing pad) and by the real-drawings-like
pictures of tests/test_pictures.py (thin Paint-style lines, tiny 28x28 drawings)."""

import numpy as np
from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: a boolean picture reduced to lines one pixel wide."""
    image = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(image, -dr, 0), -dc, 1) for dr, dc in
                 [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]]
            neighbours = sum(p)
            transitions = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.uint8)
                              for i in range(8))
            if step == 0:
                side = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                side = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = (image == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) \
                & side
            if remove.any():
                image[remove] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def trace(image28: np.ndarray) -> list[Stroke]:
    """Polylines (x, y in pixel units of the 28x28 picture) along the middle of its strokes."""
    skeleton = thin(image28 > 100)
    points = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton), strict=True)}
    edges = {point: {(point[0] + dr, point[1] + dc) for dr, dc in NEIGHBOURS} & points
             for point in points}
    strokes: list[Stroke] = []
    while any(edges.values()):
        # Start at a line's end where there is one, so that a stroke is drawn in one go.
        open_ends = [p for p, e in edges.items() if len(e) == 1]
        point = min(open_ends or [p for p, e in edges.items() if e])
        path = [point]
        while edges[point]:
            step = min(edges[point], key=lambda q: (abs(q[0] - point[0]) + abs(q[1] - point[1]), q))
            edges[point].discard(step)
            edges[step].discard(point)
            path.append(step)
            point = step
        strokes.append([(c + 0.5, r + 0.5) for r, c in path])
    return strokes


def mnist_strokes(images: np.ndarray, labels: np.ndarray, per_digit: int = 1,
                  start: int = 0) -> list[tuple[int, list[Stroke]]]:
    """``per_digit`` traced test digits of each class 0-9, taken in order from index ``start``."""
    chosen: list[tuple[int, list[Stroke]]] = []
    for digit in range(10):
        indices = np.flatnonzero(labels == digit)[start:start + per_digit]
        chosen += [(digit, trace(images[i])) for i in indices]
    return chosen


def render(strokes: list[Stroke], side: int, width: int, dark_on_light: bool = True,
           margin: float = 0.15, offset: tuple[float, float] = (0, 0)) -> Image.Image:
    """The strokes drawn with a round pen of ``width`` pixels on a ``side``-pixel square."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", (side, side), paper)
    draw = ImageDraw.Draw(image)
    scale = side * (1 - 2 * margin) / 28
    for stroke in strokes:
        points = [(side * margin + x * scale + offset[0], side * margin + y * scale + offset[1])
                  for x, y in stroke]
        if len(points) == 1:
            points = points * 2
        draw.line(points, fill=ink, width=width, joint="curve")
        if width > 2:
            for x, y in points:
                draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2],
                             fill=ink)
    return image
