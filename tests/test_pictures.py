"""Pictures: training curves, evaluate.py --report, and predict.py on digits drawn here."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.conftest import ROOT, training_config

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_side=200, max_side=2500):
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min_side <= min(image.size) and max(image.size) <= max_side, image.size


def draw_digit(digit, size=200, font_size=150, offset=(0, 0), dark_on_light=True,
               canvas=None, colour=False, font=FONT):
    """A digit rendered from a font: the kind of picture a user would draw."""
    width, height = canvas or (size, size)
    ink, paper = ((20, 20, 20), (245, 245, 240)) if dark_on_light else ((250, 250, 250), (0, 0, 0))
    if colour:
        ink, paper = ((30, 30, 160), (250, 240, 200)) if dark_on_light else ((255, 220, 0),
                                                                            (20, 40, 90))
    image = Image.new("RGB", (width, height), paper)
    typeface = ImageFont.truetype(font, font_size)
    box = ImageDraw.Draw(image).textbbox((0, 0), str(digit), font=typeface)
    x = (width - (box[2] - box[0])) // 2 - box[0] + offset[0]
    y = (height - (box[3] - box[1])) // 2 - box[1] + offset[1]
    ImageDraw.Draw(image).text((x, y), str(digit), fill=ink, font=typeface)
    return image


def phone_photo(digit, seed=0):
    """A digit small on a large page, with light falling unevenly and sensor noise."""
    rng = np.random.default_rng(seed)
    page = np.asarray(draw_digit(digit, canvas=(1200, 900), font_size=160,
                                 offset=(180, -120)).convert("L"), np.float32)
    y, x = np.mgrid[0:900, 0:1200]
    light = 0.55 + 0.45 * (x / 1200) * (1 - 0.4 * y / 900)  # a shadow from the left
    photo = page * light + rng.normal(0, 8, page.shape)
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.2))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """A deeper CNN trained for one epoch on all of MNIST (about 98.6%), in models/."""
    from mnistkit.train.training import train_and_evaluate

    folder = tmp_path_factory.mktemp("run")
    module, config = training_config(
        "train_cnn", "--epochs", "1", "--batch-size", "48", "--learning-rate", "0.005",
        "--schedule", "onecycle", "--quiet", "--output", str(folder / "models" / "cnn.h5"))
    train_and_evaluate(module.build_model, config, mnist)
    return folder


def run(script, *argv, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


# --- training curves ---------------------------------------------------------------------

@pytest.mark.slow
def test_training_writes_curves_beside_the_model(trained):
    assert_png(trained / "models" / "cnn.png")


def test_no_plot_writes_no_picture(tmp_path, small_mnist):
    from mnistkit.train.training import train_and_evaluate

    module, config = training_config("train_logreg", "--epochs", "1", "--quiet", "--no-plot",
                                     "--output", str(tmp_path / "m.h5"))
    train_and_evaluate(module.build_model, config, small_mnist)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json"]


# --- evaluate.py --report ----------------------------------------------------------------

@pytest.mark.slow
def test_report_pictures_and_numbers_agree(trained, tmp_path, small_mnist):
    from mnistkit.train.training import train_and_evaluate

    module, config = training_config("train_logreg", "--epochs", "1", "--quiet",
                                     "--output", str(trained / "models" / "logreg.h5"))
    train_and_evaluate(module.build_model, config, small_mnist)
    report = tmp_path / "report"
    result = run("evaluate.py", "--report", report, "--ensemble", cwd=trained)
    assert result.returncode == 0, result.stderr

    data = json.loads((report / "report.json").read_text())
    markdown = (report / "report.md").read_text()
    assert len(data["models"]) == 3  # two models and their ensemble
    assert_png(report / "comparison.png")
    for model in data["models"]:
        assert_png(report / model["pictures"]["confusion"])
        assert_png(report / model["pictures"]["mistakes"])
        assert f"]({model['pictures']['confusion']})" in markdown
        matrix = np.array(model["confusion_matrix"])
        assert matrix.shape == (10, 10) and matrix.sum() == 10_000
        assert 10_000 - np.trace(matrix) == model["errors"]
        row = re.search(rf"\| {re.escape(model['path'].split('/')[-1])} \| ([^|]+) \| "
                        r"([0-9.]+) \| (\d+)/10000 \| ([0-9.]+) \|", markdown)
        assert row, model["path"]
        assert float(row[2]) == round(model["accuracy"], 4)
        assert int(row[3]) == model["errors"]
        assert float(row[4]) == round(model["loss"], 4)
        per_class = re.search(rf"\| {re.escape(model['path'].split('/')[-1])} \|((?: [0-9.]+ \|)"
                              r"{10})", markdown)
        assert [float(a) for a in per_class[1].split("|")[:-1]] == [
            round(a, 4) for a in model["per_class_accuracy"]]


# --- predict.py --------------------------------------------------------------------------

def drawn_digits(folder):
    """Digits 0-9 in both polarities, in colour and grey, at several sizes and offsets."""
    cases = []
    variants = [dict(), dict(dark_on_light=False), dict(font_size=60, offset=(40, -30)),
                dict(size=600, font_size=200, offset=(-150, 120), dark_on_light=False),
                dict(colour=True), dict(colour=True, dark_on_light=False, size=90, font_size=70)]
    for number, variant in enumerate(variants):
        for digit in range(10):
            path = folder / f"d{digit}_v{number}.{['png', 'jpg', 'bmp', 'gif'][number % 4]}"
            draw_digit(digit, **variant).save(path)
            cases.append((path, digit))
    for digit in range(10):
        path = folder / f"photo{digit}.jpg"
        phone_photo(digit, seed=digit).save(path, quality=85)
        cases.append((path, digit))
    return cases


def serif_one(side=400, width=3, dark_on_light=True, base=True, slant=0.0):
    """A 1 as many people write it: a flag at the top and, often, a base."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", (side, side), paper)
    draw = ImageDraw.Draw(image)
    top, bottom, middle = 0.15 * side, 0.85 * side, 0.5 * side
    draw.line([(middle - 0.15 * side, top + 0.15 * side), (middle + slant * side, top),
               (middle - slant * side, bottom)], fill=ink, width=width, joint="curve")
    if base:
        draw.line([(middle - 0.14 * side, bottom), (middle + 0.14 * side, bottom)], fill=ink,
                  width=width)
    return image


def realistic_pictures(folder, mnist, per_digit=4):
    """Pictures like those people try their recognisers on: MNIST test digits retraced as
    1-pixel Paint-style lines on large canvases, as tiny 28x28 drawings and with a thick pen,
    serif 1s, digits of several fonts, and phone photos. Returns (path, digit) pairs."""
    from testkit.strokes import mnist_strokes, render

    cases = []

    def save(image, name, digit):
        path = folder / name
        image.save(path)
        cases.append((path, digit))

    traced = mnist_strokes(mnist.test_images, mnist.test_labels, per_digit=per_digit)
    for number, (digit, strokes) in enumerate(traced):
        save(render(strokes, 560 + 40 * (number % 5), 1), f"paint{number}_{digit}.png", digit)
        save(render(strokes, 28, 1, margin=0.05), f"tiny{number}_{digit}.png", digit)
        save(render(strokes, 28, 2, dark_on_light=False, margin=0.1),
             f"tinyw{number}_{digit}.png", digit)
        save(render(strokes, 280, 22, dark_on_light=False, margin=0.03).resize(
            (28, 28), Image.Resampling.LANCZOS), f"saved{number}_{digit}.png", digit)
        save(render(strokes, 300, 18, dark_on_light=number % 2 == 0),
             f"marker{number}_{digit}.png", digit)
    for number, variant in enumerate([dict(), dict(width=1, side=700), dict(base=False),
                                      dict(dark_on_light=False, width=12), dict(slant=0.04),
                                      dict(side=28, width=1), dict(side=60, width=2)]):
        save(serif_one(**variant), f"serif_one{number}.png", 1)
    fonts = ["dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSansMono.ttf",
             "dejavu/DejaVuSans-Bold.ttf", "liberation/LiberationSans-Regular.ttf"]
    for font in fonts:
        for digit in range(10):
            save(draw_digit(digit, font=f"/usr/share/fonts/truetype/{font}"),
                 f"font_{font.split('/')[1][:-4]}_{digit}.png", digit)
    for digit in range(10):
        path = folder / f"photo_{digit}.jpg"
        phone_photo(digit, seed=10 + digit).save(path, quality=80)
        cases.append((path, digit))
    return cases


@pytest.mark.slow
def test_predict_reads_most_drawn_digits_correctly(trained, tmp_path):
    cases = drawn_digits(tmp_path)
    result = run("predict.py", *[path for path, _ in cases], "--json",
                 "--model", trained / "models" / "cnn.h5")
    assert result.returncode == 0, result.stderr
    answers = {item["file"]: item for item in json.loads(result.stdout)}
    correct = [answers[str(path)]["predicted"] == digit for path, digit in cases]
    print(f"drawn digits classified correctly: {sum(correct)}/{len(correct)}")
    assert sum(correct) >= 0.8 * len(correct)
    photos = [answers[str(path)]["predicted"] == digit for path, digit in cases
              if "photo" in path.name]
    assert sum(photos) >= 7
    item = answers[str(cases[0][0])]
    assert len(item["probabilities"]) == 10 and abs(sum(item["probabilities"]) - 1) < 1e-4
    assert [pair[0] for pair in item["top3"]][0] == item["predicted"]


@pytest.mark.slow
def test_predict_reads_realistic_pictures(trained, tmp_path, mnist):
    """Thin Paint-style lines, tiny 28x28 drawings, serif 1s, fonts, photos (see
    realistic_pictures): the issue asks 97.5% of such pictures of the deeper CNN."""
    cases = realistic_pictures(tmp_path, mnist)
    result = run("predict.py", *[path for path, _ in cases], "--json",
                 "--model", trained / "models" / "cnn.h5")
    assert result.returncode == 0, result.stderr
    answers = {item["file"]: item for item in json.loads(result.stdout)}
    wrong = [(path.name, answers[str(path)]["reading"]) for path, digit in cases
             if answers[str(path)]["reading"] != str(digit)]
    print(f"realistic pictures read right: {len(cases) - len(wrong)}/{len(cases)}; "
          f"wrong: {wrong}")
    assert len(wrong) <= 0.04 * len(cases)
    assert not [name for name, _ in wrong if name.startswith("serif_one")]


def number_photo(text, seed=0, spacing=40):
    """A number written on paper and photographed: digits apart, uneven light, noise."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", (1400, 700), 235)
    typeface = ImageFont.truetype(FONT, 200)
    x = 160
    for character in text:
        ImageDraw.Draw(page).text((x, 200), character, fill=25, font=typeface)
        box = ImageDraw.Draw(page).textbbox((x, 200), character, font=typeface)
        x = box[2] + spacing
    y, x = np.mgrid[0:700, 0:1400]
    photo = np.asarray(page, np.float32) * (0.6 + 0.4 * x / 1400) + rng.normal(0, 6, (700, 1400))
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.0))


@pytest.mark.slow
def test_predict_reads_a_photo_of_a_number_left_to_right(trained, tmp_path):
    number_photo("1984").save(tmp_path / "year.jpg", quality=85)
    draw_digit(3).save(tmp_path / "three.png")
    result = run("predict.py", tmp_path / "year.jpg", tmp_path / "three.png",
                 "--model", trained / "models" / "cnn.h5")
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'year.jpg'}: 1984   [" in result.stdout
    assert f"{tmp_path / 'three.png'}: 3   [3: " in result.stdout
    result = run("predict.py", tmp_path / "year.jpg", "--json",
                 "--model", trained / "models" / "cnn.h5")
    item = json.loads(result.stdout)[0]
    assert item["reading"] == "1984" and [d["predicted"] for d in item["digits"]] == [1, 9, 8, 4]
    assert item["predicted"] == 1 and len(item["digits"][3]["probabilities"]) == 10


def test_split_digits_keeps_pieces_of_one_digit_together():
    from mnistkit.prepare.pictures import split_digits

    def gray(image):
        return np.asarray(image.convert("L"), np.float32) / 255

    assert len(split_digits(gray(number_photo("2026", spacing=25)))) == 4
    five = Image.new("L", (300, 300), 255)  # a 5 whose bar was drawn apart from its body
    draw = ImageDraw.Draw(five)
    draw.line([(120, 60), (200, 60)], fill=0, width=14)
    draw.line([(110, 75), (100, 140)], fill=0, width=14)
    draw.arc([80, 120, 200, 240], 200, 140, fill=0, width=14)
    speck = draw_digit(7, size=400)
    ImageDraw.Draw(speck).ellipse([20, 380, 26, 386], fill=(0, 0, 0))  # a stray dot
    assert len(split_digits(gray(five))) == 1
    assert len(split_digits(gray(speck))) == 1


def test_thin_lines_on_a_large_canvas_stay_whole():
    """A 1-pixel line drawn in Paint on a large canvas: shrunk by averaging it breaks into
    faint dots; prepared, it is one bright stroke of MNIST's width."""
    from mnistkit.prepare.pictures import prepare_digit

    canvas = Image.new("L", (900, 900), 255)
    ImageDraw.Draw(canvas).ellipse([300, 150, 600, 750], outline=0, width=1)  # a 0
    digit = prepare_digit(np.asarray(canvas, np.float32) / 255)
    ring = digit > 0.5
    assert ring.sum() >= 60  # MNIST's zeros light about 100-150 pixels above 0.5
    rows = np.flatnonzero(ring.any(axis=1))
    for row in rows[2:-2]:  # every row crosses the ring twice: no gaps in the line
        runs = np.count_nonzero(np.diff(np.concatenate([[0], ring[row], [0]]).astype(int)) == 1)
        assert runs == 2, (row, ring.astype(int))


@pytest.mark.slow
def test_predict_default_model_test_index_show_and_bad_files(trained, tmp_path):
    draw_digit(3).save(tmp_path / "three.png")
    (tmp_path / "notes.png").write_text("not a picture")
    result = run("predict.py", tmp_path / "three.png", tmp_path / "notes.png",
                 tmp_path / "missing.jpg", "--test-index", "0", "--show", cwd=trained)
    assert result.returncode == 1  # some failed, the others were classified
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0] == f"error: {tmp_path / 'missing.jpg'}: no such file"  # said at once
    assert "notes.png: not a readable image" in errors[1]
    assert "three.png: 3" in result.stdout
    assert "test image 0: 7 (true label 7)" in result.stdout
    assert "(model: models/cnn.h5" in result.stdout
    assert "wrote predictions/three.png, predictions/test_image_0.png" in result.stdout
    assert_png(trained / "predictions" / "three.png")
    assert_png(trained / "predictions" / "test_image_0.png")


def test_predict_without_models_says_what_to_do(tmp_path):
    draw_digit(1).save(tmp_path / "one.png")
    result = run("predict.py", tmp_path / "one.png", cwd=tmp_path)
    assert result.returncode == 2
    assert "no trained models with records in models/" in result.stderr


def test_prepared_digit_looks_like_mnist():
    from mnistkit.prepare.pictures import prepare_digit

    for picture in (draw_digit(7), draw_digit(7, dark_on_light=False, size=500, font_size=90),
                    phone_photo(7)):
        gray = np.asarray(picture.convert("L"), np.float32) / 255
        digit = prepare_digit(gray)
        assert digit.shape == (28, 28) and digit.max() == pytest.approx(1)
        rows, columns = np.nonzero(digit > 0.1)
        assert max(rows.max() - rows.min(), columns.max() - columns.min()) <= 21
        mass = digit.sum()
        centre = ((np.indices(digit.shape)[0] * digit).sum() / mass,
                  (np.indices(digit.shape)[1] * digit).sum() / mass)
        assert abs(centre[0] - 14) < 1.5 and abs(centre[1] - 14) < 1.5
        assert digit[0].max() == 0 and digit[:, 0].max() == 0  # background is black
