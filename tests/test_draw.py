"""draw.py in a real browser: digits drawn on the pad with pointer moves, read by the models.

Headless Chromium (Debian's package, /usr/bin/chromium; .ci/run installs it) driven by
Playwright. The digits are MNIST test digits traced as pen strokes (testkit/strokes.py).
The same code makes the README's screenshot:

    python -m tests.test_draw --screenshot docs/images/draw.png --model models/cnn.h5 ...
"""

import base64
import http.client
import io
import json
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image

from testkit.strokes import mnist_strokes, render
from tests.conftest import ROOT, ctrl_c_as_in_a_terminal, training_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


# --- the page, driven as a user drives it (used by the tests and by the screenshot) ---------

def open_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser, url: str, width: int = 1280, height: int = 820):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    return page


def draw(page, strokes, left: float = 0.5, size: float = 0.8) -> None:
    """Draw strokes (28x28 picture units) with the mouse's pointer events on the pad: the
    digit's 28x28 box ``size`` of the pad's height, its centre ``left`` of the pad's width."""
    box = page.get_by_test_id("pad").bounding_box()
    side = size * box["height"]
    x0 = box["x"] + left * box["width"] - side / 2
    y0 = box["y"] + (box["height"] - side) / 2
    for stroke in strokes:
        # Every other point of the traced pixels: the line between them is the same, and
        # each pointer move is a round trip to the browser.
        stroke = stroke[:1] + stroke[2:-1:2] + stroke[-1:] if len(stroke) > 2 else stroke
        points = [(x0 + x * side / 28, y0 + y * side / 28) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def wait_for_readings(page) -> dict[str, str]:
    """Once the latest drawing is read: each model's reading on the page, by file name."""
    page.wait_for_function("document.body.dataset.busy === '0'")
    cards = page.get_by_test_id("model")
    return {cards.nth(i).get_attribute("data-file"):
            cards.nth(i).get_by_test_id("reading").inner_text()
            for i in range(cards.count())}


def screenshot(page, strokes_of_digits, path: Path) -> dict[str, str]:
    """A number drawn on the pad, read, and the page photographed: the README's picture."""
    count = len(strokes_of_digits)
    for position, strokes in enumerate(strokes_of_digits):
        draw(page, strokes, left=(position + 0.5) / count, size=min(0.8, 1.25 / count))
    readings = wait_for_readings(page)
    page.wait_for_timeout(200)  # the enlarged inputs paint from their data URLs
    page.screenshot(path=str(path), full_page=True)
    return readings


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory, mnist, small_mnist):
    """The deeper CNN, one epoch on all of MNIST, and a logistic regression on a slice."""
    from mnistkit.train.training import train_and_evaluate

    folder = tmp_path_factory.mktemp("draw") / "models"
    for script, extra, data, name in [
            ("train_cnn", ["--batch-size", "48", "--learning-rate", "0.005", "--schedule",
                           "onecycle"], mnist, "cnn.h5"),
            ("train_logreg", [], small_mnist, "logreg.h5")]:
        module, config = training_config(script, "--epochs", "1", "--quiet", "--no-plot",
                                         *extra, "--output", str(folder / name))
        train_and_evaluate(module.build_model, config, data)
    return folder


@pytest.fixture(scope="module")
def server(models):
    from mnistkit.page.server import serve_in_thread
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.pictures import PictureReader

    host = ModelHost(sorted(models.glob("*.h5")), pixels="0-1")
    host.start()
    reader = PictureReader()
    # What the readings are, whatever the load: no model is left out for being late here
    # (the models that are late, and what the page does then, are tested on their own).
    running = serve_in_thread(host, reader, deadline=LATE_ENOUGH)
    yield running
    running.shutdown()
    running.server_close()
    host.close()
    reader.close()


LATE_ENOUGH = 120.0  # seconds: on a busy 2-core machine 16 clients' answers can take 3 s


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -r requirements-dev.txt", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)",
                    pytrace=False)
    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server.url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def traced(mnist):
    return mnist_strokes(mnist.test_images, mnist.test_labels, per_digit=2)


def cnn_reading(readings: dict[str, str]) -> str:
    return next(text for file, text in readings.items() if file.endswith("cnn.h5"))


# --- the page ----------------------------------------------------------------------------

@pytest.mark.slow
def test_digits_drawn_on_the_pad_are_read_by_every_model(page, traced):
    right = 0
    for number, (digit, strokes) in enumerate(traced):
        draw(page, strokes)
        readings = wait_for_readings(page)
        assert len(readings) == 2 and all(len(text) == 1 for text in readings.values())
        right += cnn_reading(readings) == str(digit)
        seen = page.evaluate("""() => { const c = document.querySelector('[data-testid=input]');
            const d = c.getContext('2d').getImageData(0, 0, 224, 224).data;
            let bright = 0; for (let i = 0; i < d.length; i += 4) bright += d[i] > 128;
            return bright; }""")
        assert seen > 500, "the enlarged 28x28 input shows the digit"
        if number % 2:
            page.get_by_test_id("clear").click()
        else:
            page.keyboard.press("Escape")
        assert set(wait_for_readings(page).values()) == {""}
    print(f"digits drawn on the pad read right by the CNN: {right}/{len(traced)}")
    assert right >= 0.9 * len(traced)


@pytest.mark.slow
def test_most_accurate_model_first_and_the_page_says_when_models_disagree(page, traced):
    files = [page.get_by_test_id("model").nth(i).get_attribute("data-file") for i in range(2)]
    assert files[0].endswith("cnn.h5") and files[1].endswith("logreg.h5")
    statuses = set()
    for _, strokes in traced[::3]:
        draw(page, strokes)
        readings = wait_for_readings(page)
        status = page.get_by_test_id("status").inner_text()
        statuses.add(status)
        if len(set(readings.values())) > 1:
            assert status == "The models disagree."
        page.keyboard.press("Escape")
    assert any(status.startswith("Read as") for status in statuses)


@pytest.mark.slow
def test_undo_pen_width_and_colours(page, traced):
    digit, strokes = traced[2]  # a 1
    page.get_by_test_id("invert").click()  # black on white now
    page.get_by_test_id("width").evaluate("input => { input.value = 10; }")
    draw(page, strokes)
    first = wait_for_readings(page)
    assert cnn_reading(first) == str(digit)
    draw(page, [[(2, 2), (26, 26)], [(2, 26), (26, 2)]], left=0.9, size=0.3)  # a cross
    assert all(len(text) == 2 for text in wait_for_readings(page).values())
    page.get_by_test_id("undo").click()
    page.keyboard.press("u")
    assert wait_for_readings(page) == first
    assert page.evaluate("getComputedStyle(document.getElementById('pad')).backgroundColor") \
        == "rgb(255, 255, 255)"


@pytest.mark.slow
def test_a_number_written_apart_is_read_left_to_right(page, traced):
    digits = [traced[2], traced[18], traced[16], traced[8]]  # 1 9 8 4
    for position, (_, strokes) in enumerate(digits):
        draw(page, strokes, left=0.14 + 0.24 * position, size=0.42)
    reading = cnn_reading(wait_for_readings(page))
    assert len(reading) == 4
    assert sum(a == b for a, b in zip(reading, "1984", strict=True)) >= 3, reading
    assert page.locator("#seen canvas:not([hidden])").count() == 4


@pytest.mark.slow
def test_a_chosen_or_dropped_picture_is_read(page, tmp_path, mnist):
    from tests.test_pictures import draw_digit

    draw_digit(4).save(tmp_path / "four.png")
    page.get_by_test_id("file").set_input_files(str(tmp_path / "four.png"))
    assert cnn_reading(wait_for_readings(page)) == "4"

    buffer = io.BytesIO()
    draw_digit(2, dark_on_light=False, size=300).save(buffer, format="JPEG")
    page.evaluate("""async data => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "two.jpg", { type: "image/jpeg" }));
        const pad = document.querySelector('[data-testid=pad]');
        pad.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
    }""", base64.b64encode(buffer.getvalue()).decode())
    assert cnn_reading(wait_for_readings(page)) == "2"

    (tmp_path / "notes.png").write_text("not a picture")
    page.get_by_test_id("file").set_input_files(str(tmp_path / "notes.png"))
    wait_for_readings(page)
    assert "not a readable image" in page.get_by_test_id("status").inner_text()


@pytest.mark.slow
def test_screenshot_of_the_page_in_use(page, traced, tmp_path):
    path = tmp_path / "draw.png"
    readings = screenshot(page, [traced[14][1]], path)  # a 7
    assert cnn_reading(readings) == "7"
    with Image.open(path) as image:
        assert image.size[0] == 1280 and image.size[1] >= 600


# --- the server --------------------------------------------------------------------------

def request(server, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    # Generous: sixteen clients at once on a loaded 2-core machine queue for minutes; what
    # is tested is every answer, not its time (benchmarks/draw_latency.py measures that)
    connection = http.client.HTTPConnection(host, port, timeout=600)
    if method == "RAW":  # a path exactly as given, never normalised by a client
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
    else:
        connection.request(method, path, body, headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, json.loads(data) if kind == "application/json" else {"body": data}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(side: int = 60_000) -> bytes:
    """A PNG header declaring ``side`` x ``side`` pixels, with a little data: unpacked it
    would take gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 100_000)) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_api_predict_answers_json(server, traced):
    status, answer = request(server, "POST", "/api/predict",
                             png_bytes(render(traced[14][1], 240, 12, dark_on_light=False)))
    assert status == 200
    assert answer["input"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(answer["input"].split(",")[1]))) as seen:
        assert seen.size == (28, 28)
    first = answer["models"][0]
    assert first["file"].endswith("cnn.h5") and first["reading"] == "7"
    assert len(first["digits"]) == 1 and len(first["digits"][0]["probabilities"]) == 10
    assert abs(sum(first["digits"][0]["probabilities"]) - 1) < 1e-3
    assert first["digits"][0]["predicted"] == 7


@pytest.mark.parametrize("method, path, body, headers, status, message", [
    ("POST", "/api/predict", b"hello", {}, 400, "not a readable image"),
    ("POST", "/api/predict", b"", {}, 400, "empty"),
    ("POST", "/api/predict", png_bytes(Image.new("L", (200, 200), 255)), {}, 422, "no digit"),
    ("POST", "/api/predict", bomb_png(), {}, 413, "too many pixels"),
    ("POST", "/api/predict", b"", {"Content-Length": str(50 * 2 ** 20)}, 413, "at most"),
    ("GET", "/api/predict", None, {}, 405, "use POST"),
    ("PUT", "/api/predict", b"x", {}, 405, "use GET or POST"),
    ("POST", "/api/other", b"x", {}, 404, "no such endpoint"),
    ("GET", "/nothing.html", None, {}, 404, "no such page"),
    ("RAW", "/../serving.py", None, {}, 404, "no such page"),
    ("RAW", "/%2e%2e/serving.py", None, {}, 404, "no such page"),
    ("RAW", "/..%2fserving.py", None, {}, 404, "no such page"),
    ("RAW", "//etc/passwd", None, {}, 404, "no such page"),
])
@pytest.mark.slow
def test_bad_requests_get_a_4xx_and_the_server_goes_on(server, traced, method, path, body,
                                                       headers, status, message):
    answered, answer = request(server, method, path, body, headers)
    assert answered == status and message in answer["error"]
    good, answer = request(server, "POST", "/api/predict",
                           png_bytes(render(traced[0][1], 200, 10)))
    assert good == 200 and answer["models"][0]["reading"]


@pytest.mark.slow
def test_page_is_served_from_its_own_folder(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and b'data-testid="pad"' in page["body"]
    assert b"http://" not in page["body"] and b"https://" not in page["body"]  # offline


@pytest.mark.slow
def test_sixteen_concurrent_clients_get_their_own_answers(server, traced):
    bodies = [png_bytes(render(strokes, 200, 10)) for _, strokes in traced]
    expected = [request(server, "POST", "/api/predict", body)[1]["models"] for body in bodies]
    failures, lock = [], threading.Lock()

    answered = []

    def client(number: int) -> None:
        try:
            for index in range(number, number + 10):
                status, answer = request(server, "POST", "/api/predict", bodies[index % 20])
                if status != 200 or [m["reading"] for m in answer["models"]] != [
                        m["reading"] for m in expected[index % 20]]:
                    with lock:
                        failures.append((index, status))
                with lock:
                    answered.append(index)
        except Exception as error:  # noqa: BLE001 - a client that dies is a failure too
            with lock:
                failures.append((number, repr(error)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answered) == 160, failures[:3]  # every request of every client came back
    assert failures == []


@pytest.mark.slow
def test_a_model_file_that_cannot_load_is_reported_and_the_others_read(models, tmp_path):
    from mnistkit.page.answers import answer
    from mnistkit.score.hosting import ModelHost

    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    from mnistkit.score.pictures import PictureReader

    host = ModelHost([tmp_path / "broken.h5", models / "cnn.h5"], pixels="0-1")
    host.start()
    reader = PictureReader()
    result = answer(host, reader, png_bytes(render([[(14, 5), (14, 23)]], 200, 12)))
    reader.close()
    assert result["models"][0]["file"].endswith("cnn.h5")
    assert result["models"][0]["reading"] == "1"
    assert result["models"][1]["file"].endswith("broken.h5") and result["models"][1]["error"]
    host.close()


@pytest.mark.slow
def test_draw_py_prints_the_address_and_stops_on_ctrl_c(models):
    process = subprocess.Popen([sys.executable, str(ROOT / "draw.py"), "--port", "0",
                                "--model", str(models / "logreg.h5")], cwd=models.parent,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        line = next(line for line in process.stdout if line.startswith("draw digits at"))
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:")
        host, port = url[len("http://"):].rstrip("/").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()


def test_draw_py_without_models_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "draw.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no model files in models/" in result.stderr
    result = subprocess.run([sys.executable, str(ROOT / "draw.py"), "--model", "missing.h5"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--model missing.h5: no such file" in result.stderr


# --- the README's screenshot ---------------------------------------------------------------

def main(argv=None) -> int:
    import argparse

    from playwright.sync_api import sync_playwright

    from mnistkit import backend
    from mnistkit.files.data import load_mnist
    from mnistkit.page.server import serve_in_thread
    from mnistkit.score.hosting import ModelHost

    parser = argparse.ArgumentParser(description="Write the README's picture of draw.py.")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs/images/draw.png")
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--digits", default="7", help="test digits drawn (default: 7)")
    args = parser.parse_args(argv)
    backend.load_backend_quietly()
    mnist = load_mnist()
    strokes = dict(mnist_strokes(mnist.test_images, mnist.test_labels))
    from mnistkit.score.pictures import PictureReader

    host = ModelHost(args.model, pixels="0-1")
    host.start()
    running = serve_in_thread(host, PictureReader())
    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        page = open_page(browser, running.url)
        readings = screenshot(page, [strokes[int(d)] for d in args.digits], args.screenshot)
        browser.close()
    running.shutdown()
    print(f"wrote {args.screenshot}: {readings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
