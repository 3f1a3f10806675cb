"""Pictures as people make them: one digit in several strokes stays one digit, numbers
written apart still split, frames and specks are no digits, and the preparation matches
MNIST's (20x20 box, centre of mass, stroke width)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

SIDE = 300


def strokes(*lines, width=12, size=(SIDE, SIDE), dark_on_light=True, arcs=()):
    """A picture drawn stroke by stroke: each line a list of (x, y) points, each arc
    (box, start, end) in degrees as PIL draws it."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    for points in lines:
        draw.line(points, fill=ink, width=width, joint="curve")
    for box, start, end in arcs:
        draw.arc(box, start, end, fill=ink, width=width)
    return image


def gray(image):
    return np.asarray(image.convert("L"), np.float32) / 255


def count(image):
    from mnistkit.prepare.pictures import split_digits

    return len(split_digits(gray(image)))


# Single digits drawn in separate strokes, with gaps between the strokes' columns.
ONE_DIGIT = {
    "1 with a detached flag and a base serif": strokes(
        [(150, 40), (150, 250)], [(95, 95), (135, 45)], [(105, 262), (195, 262)]),
    "1 with a flag drawn apart, to the left": strokes([(165, 40), (165, 260)],
                                                      [(100, 110), (140, 60)]),
    "2 with a loop drawn apart": strokes(
        [(150, 220), (230, 250)],
        arcs=[((90, 40, 220, 170), 180, 70), ((60, 170, 140, 250), 0, 360)]),
    "3 drawn as two arcs side by side": strokes(
        arcs=[((80, 30, 190, 140), 270, 90), ((110, 140, 230, 260), 270, 90)]),
    "3 drawn in three strokes": strokes(
        [(80, 40), (190, 40)], [(205, 50), (140, 140)], arcs=[((110, 140, 230, 260), 270, 140)]),
    "5 with its bar drawn apart, to the right": strokes(
        [(115, 60), (105, 140)], [(150, 55), (230, 55)], arcs=[((80, 120, 210, 250), 200, 140)]),
    "4 drawn in two strokes that do not cross": strokes(
        [(120, 40), (70, 170), (150, 170)], [(175, 60), (175, 260)]),
    "4 in two strokes, wide, the bent one tall": strokes(
        [(100, 60), (20, 200), (160, 200)], [(178, 100), (178, 250)]),
    "0 drawn as two arcs": strokes(arcs=[((60, 40, 200, 260), 90, 270),
                                        ((78, 40, 218, 260), 270, 90)]),
    "7 with a crossbar drawn apart": strokes([(70, 50), (210, 50), (120, 260)],
                                            [(100, 150), (150, 150)], [(170, 150), (200, 150)]),
    "1 with a speck beside it": strokes([(150, 40), (150, 250)], [(210, 150), (214, 150)]),
}


@pytest.mark.parametrize("name", list(ONE_DIGIT))
def test_one_digit_in_separate_strokes_stays_one(name):
    assert count(ONE_DIGIT[name]) == 1, name


@pytest.mark.parametrize("name", list(ONE_DIGIT))
def test_one_digit_stays_one_thin_small_or_light_on_dark(name):
    image = ONE_DIGIT[name]
    assert count(image.resize((60, 60), Image.Resampling.LANCZOS)) == 1, name
    assert count(Image.eval(image, lambda v: 255 - v)) == 1, name
    assert count(image.resize((1200, 1200), Image.Resampling.NEAREST)) == 1, name


def written_apart(*digits, gap=60, height=220, width=10):
    """Digits side by side, ``gap`` pixels apart: each a function drawing in a box."""
    shapes = {
        "1": lambda x, h: [[(x + 30, 0), (x + 30, h)]],
        "4": lambda x, h: [[(x + 60, 0), (x, 0.65 * h), (x + 90, 0.65 * h)],
                           [(x + 70, 0.3 * h), (x + 70, h)]],
        "7": lambda x, h: [[(x, 0), (x + 100, 0), (x + 40, h)]],
        "0": lambda x, h: "ellipse",
    }
    widths = {"1": 60, "4": 95, "7": 100, "0": 110}
    size = (sum(widths[d] for d in digits) + gap * (len(digits) + 1), height + 80)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    x = gap
    for digit in digits:
        lines = shapes[digit](x, height)
        if lines == "ellipse":
            draw.ellipse([x, 40, x + widths[digit], 40 + height], outline=0, width=width)
        else:
            for line in lines:
                draw.line([(px, py + 40) for px, py in line], fill=0, width=width)
        x += widths[digit] + gap
    return image


@pytest.mark.parametrize("digits", ["11", "17", "41", "410", "7041", "00"])
def test_digits_written_apart_still_split(digits):
    assert count(written_apart(*digits)) == len(digits)
    assert count(written_apart(*digits, gap=35)) == len(digits)


def test_a_number_photographed_still_splits():
    from tests.test_pictures import number_photo

    assert count(number_photo("2026", spacing=25)) == 4
    assert count(number_photo("1984")) == 4


def framed(image, sides="lb", inset=2, width=2):
    """The picture with lines along its edges: what is left of a box drawn around a
    digit, or of the square of a form the digit was cut out of."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    w, h = image.size
    ink = 0 if image.getpixel((0, 0)) > 127 else 255
    lines = {"l": [(inset, 0), (inset, h)], "r": [(w - 1 - inset, 0), (w - 1 - inset, h)],
             "t": [(0, inset), (w, inset)], "b": [(0, h - 1 - inset), (w, h - 1 - inset)]}
    for side in sides:
        draw.line(lines[side], fill=ink, width=width)
    return image


@pytest.mark.parametrize("sides", ["r", "lb", "lrtb"])
def test_lines_along_the_edges_are_no_digit(sides):
    from mnistkit.prepare.pictures import prepare_digit

    three = ONE_DIGIT["3 drawn as two arcs side by side"]
    picture = framed(three, sides)
    assert count(picture) == 1
    with_frame, without = prepare_digit(gray(picture)), prepare_digit(gray(three))
    assert np.abs(with_frame - without).mean() < 0.02


def test_a_tightly_cropped_one_is_kept_whole():
    """A 1 cut out tightly touches the top and bottom edges: it is the digit, not a frame."""
    from mnistkit.prepare.pictures import prepare_digit

    one = strokes([(20, 0), (20, 120)], size=(40, 120), width=8)
    digit = prepare_digit(gray(one))
    rows = np.flatnonzero(digit.max(axis=1) > 0.5)
    assert rows[-1] - rows[0] >= 17  # fitted to the 20-pixel box, not dropped




def test_a_bar_at_the_edge_of_a_tight_crop_is_the_digits():
    """A 5 cut out tightly: its bar, drawn apart, runs along the top edge. It is part of the
    digit, not a frame: the 5 is prepared as it is with a margin around it."""
    from mnistkit.prepare.pictures import prepare_digit

    five = ONE_DIGIT["5 with its bar drawn apart, to the right"]
    left, top, right, bottom = Image.eval(five, lambda v: 255 - v).getbbox()
    tight = five.crop((left, top, right, bottom))
    difference = np.abs(prepare_digit(gray(tight)) - prepare_digit(gray(five)))
    assert difference.mean() < 0.02


def full_share(digit):
    """The share of a digit's inked pixels that are full ink."""
    return (digit > 0.95).sum() / (digit > 0.05).sum()


def test_mnist_digits_drawn_large_come_back_as_they_were(mnist):
    """MNIST's own test digits, enlarged tenfold and dark on light like a scan: prepared,
    each fits the same 20x20 box, sits at the same centre of mass and has as many full
    pixels as MNIST's, so it is close to the original."""
    from mnistkit.prepare.pictures import prepare_digit

    rows, columns = np.indices((28, 28))
    differences, shares = [], []
    for original in mnist.test_images[:100] / 255:
        large = Image.fromarray(np.uint8(original * 255)).resize((280, 280),
                                                                  Image.Resampling.BICUBIC)
        digit = prepare_digit(1 - np.asarray(large, np.float32) / 255)
        for image in (digit, original):
            assert abs((rows * image).sum() / image.sum() - 14) < 1.0
            assert abs((columns * image).sum() / image.sum() - 14) < 1.0
        differences.append(np.abs(digit - original).mean())
        shares.append((full_share(digit), full_share(original)))
    assert np.mean(differences) < 0.04
    assert abs(np.mean(np.subtract(*zip(*shares, strict=True)))) < 0.05


@pytest.mark.parametrize("width", [1, 3, 30])
def test_strokes_of_any_pen_come_out_like_mnists(width):
    """A 1-pixel Paint line, a ballpoint, a marker: each prepared with strokes about as wide
    as MNIST's and full in their middle (shrunk to 20 pixels, a thin line is gray)."""
    from mnistkit.prepare.pictures import prepare_digit

    seven = strokes([(100, 60), (460, 60), (220, 520)], width=width, size=(560, 560))
    digit = prepare_digit(gray(seven))
    assert 0.25 <= full_share(digit) <= 0.6
    assert 40 <= (digit > 0.5).sum() <= 110  # MNIST's 7s: about 60-100 such pixels
    rows, columns = np.nonzero(digit > 0.05)
    assert max(np.ptp(rows), np.ptp(columns)) + 1 in (20, 21, 22)  # the 20x20 box, soft edges


def test_the_benchmark_counts_per_kind_and_writes_each_miss(tmp_path):
    """benchmarks/pictures.py's figures: right of all per kind with the Wilson interval, a
    single digit read as several counted apart, and each miss's inputs as a PNG."""
    import argparse

    from benchmarks.pictures import Reading, summary, targets, write_outputs
    from mnistkit.score.statistics import wilson_interval

    digit = np.zeros((1, 28, 28), np.uint8)
    readings = [Reading({"file": f"a/{n}.png", "kind": "drawing", "label": 1}, "1", digit)
                for n in range(49)]
    readings.append(Reading({"file": "a/x.png", "kind": "drawing", "label": 1}, "11",
                            np.zeros((2, 28, 28), np.uint8)))
    readings.append(Reading({"file": "b/y.jpg", "kind": "photo", "label": 7}, "1", digit))
    figures = summary(readings)
    assert figures["drawing"]["right"] == 49 and figures["drawing"]["total"] == 50
    assert figures["drawing"]["interval"] == list(wilson_interval(49, 50))
    assert figures["drawing"]["several"] == 1 and figures["all"]["several"] == 1
    assert dict(targets(figures)) == {"drawings >= 98%": True, "photos >= 95%": False,
                                      "no single digit read as several": False}
    args = argparse.Namespace(model="m.h5", part="tune")
    misses = write_outputs(readings, figures, tmp_path, args)
    assert [(m["file"], m["reading"]) for m in misses] == [("a/x.png", "11"), ("b/y.jpg", "1")]
    with Image.open(misses[0]["input"]) as picture:
        assert picture.size == (4 * (2 * 28 + 2), 4 * 28)  # both inputs, side by side
    assert (tmp_path / "pictures.json").is_file()
