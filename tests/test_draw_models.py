"""draw.py's models: one per trained run by default (not the exports beside it), the page
served as soon as the first is ready, the others loading behind it and shown as loading."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.strokes import render
from tests.conftest import ROOT, ctrl_c_as_in_a_terminal, load_script, training_config
from tests.hostile_tasks import LoadingTasks

HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(100)  # the first bytes of a model: no refusal unread


def record(accuracy: float) -> str:
    return json.dumps({"test": {"accuracy": accuracy}})


def test_by_default_one_model_per_trained_run_without_its_exports(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("cnn_fast.h5", "logreg.keras", "downloaded.h5", "cnn_fast_float.tflite",
                 "cnn_fast_int8.tflite", "cnn_fast_float.onnx", "logreg_float.onnx",
                 "lonely_float.onnx"):  # an export whose model is not here is a model
        (models / name).write_bytes(HDF5)
    (models / "cnn_fast_savedmodel").mkdir()
    (models / "cnn_fast_savedmodel" / "saved_model.pb").write_bytes(b"x")
    (models / "cnn_fast.json").write_text(record(0.99))
    monkeypatch.chdir(tmp_path)
    chosen, left_out = load_script("draw").model_paths([])
    assert [path.name for path in chosen] == ["cnn_fast.h5", "downloaded.h5", "logreg.keras",
                                              "lonely_float.onnx"]
    assert sorted(path.name for path in left_out) == [
        "cnn_fast_float.onnx", "cnn_fast_float.tflite", "cnn_fast_int8.tflite",
        "cnn_fast_savedmodel", "logreg_float.onnx"]
    named = [Path("models/cnn_fast_int8.tflite")]
    assert load_script("draw").model_paths(named) == (named, [])


def test_the_page_answers_while_a_slow_model_still_loads(tmp_path):
    from mnistkit.page.answers import answer
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.pictures import PictureReader

    quick, slow = tmp_path / "quick.h5", tmp_path / "slow-4.h5"
    for path, accuracy in ((quick, 0.99), (slow, 0.9)):
        path.write_bytes(HDF5)
        path.with_suffix(".json").write_text(record(accuracy))
    host, reader = ModelHost([slow, quick], tasks=LoadingTasks), PictureReader()
    done = []
    try:
        started = time.monotonic()
        host.start(wait=False, announce=done.append)
        assert time.monotonic() - started < 4  # back once the quick one is ready
        assert [m.path for m in host.still_loading()] == [str(slow)]
        picture = render([[(14, 5), (14, 23)]], 200, 12)
        result = answer(host, reader, png(picture))
        by_file = {entry["file"]: entry for entry in result["models"]}
        assert by_file[str(quick)]["reading"] == "1"
        assert by_file[str(slow)]["loading"] is True and "reading" not in by_file[str(slow)]
        host.wait_for_first()
        deadline = time.monotonic() + 60
        while host.still_loading() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not host.still_loading() and [m.path for m in done] == [str(quick), str(slow)]
        result = answer(host, reader, png(picture))
        assert [entry.get("reading") for entry in result["models"]] == ["1", "1"]
    finally:
        host.close()
        reader.close()


def png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_the_page_shows_which_models_are_still_loading(tmp_path):
    from mnistkit.page.server import serve_in_thread
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.pictures import PictureReader
    from tests.test_draw import draw, open_browser, open_page, wait_for_readings

    playwright_api = pytest.importorskip("playwright.sync_api")
    quick, slow = tmp_path / "quick.h5", tmp_path / "slow-8.h5"
    for path in (quick, slow):
        path.write_bytes(HDF5)
    host, reader = ModelHost([quick, slow], tasks=LoadingTasks), PictureReader()
    host.start(wait=False)
    server = serve_in_thread(host, reader)
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = open_browser(playwright)
            page = open_page(browser, server.url)
            card = page.locator(f'[data-testid=model][data-file="{slow}"]')
            assert card.get_by_test_id("model-loading").inner_text() == "loading…"
            assert page.get_by_test_id("loading").inner_text() == "1 model is still loading."
            draw(page, [[(14, 5), (14, 23)]])
            assert wait_for_readings(page)[str(quick)] == "1"
            card.get_by_test_id("model-loading").wait_for(state="detached", timeout=60_000)
            page.get_by_test_id("loading").wait_for(state="hidden")
            # once ready, the drawing on the pad is read again, by the late model too
            page.wait_for_function(f"""() => document.querySelector(
                '[data-file="{slow}"] [data-testid=reading]').textContent === '1'""")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        host.close()
        reader.close()


@pytest.mark.slow
def test_draw_py_serves_once_the_first_model_is_ready_and_says_so(tmp_path, small_mnist):
    from mnistkit.train.training import train_and_evaluate

    models = tmp_path / "models"
    for name in ("a.h5", "b.h5"):
        module, config = training_config("train_logreg", "--epochs", "1", "--quiet",
                                         "--no-plot", "--output", str(models / name))
        train_and_evaluate(module.build_model, config, small_mnist)
    (models / "a_float.onnx").write_bytes(b"an export: left out")
    process = subprocess.Popen([sys.executable, str(ROOT / "draw.py"), "--port", "0",
                                "--pixels", "0-1"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("all 2 models done"):
                break
        assert lines[0] == ("loading 2 models (one per trained run in models/); left out 1 "
                            "export of them (a_float.onnx): --model PATH takes any file")
        serving = next(i for i, line in enumerate(lines) if line.startswith("draw digits at"))
        assert sum("of 2 done" in line for line in lines[:serving]) >= 1
        assert lines[-1] == "all 2 models done: 2 ready"
        url = lines[serving].split()[3]
        host, port = url[len("http://"):].rstrip("/").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/api/models")
        models_now = json.loads(connection.getresponse().read())["models"]
        assert [m["loading"] for m in models_now] == [False, False]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
