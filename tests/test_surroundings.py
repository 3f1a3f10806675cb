"""What surrounds the model files, read as a hostile user would write it: records, pictures,
the page's parser, checkpoints, TensorBoard folders, killed scripts. Each must end
in a reason in words, in bounded time and memory, never a hang, a traceback or a wrong model."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, ctrl_c_as_in_a_terminal, linux_only, posix_only


# ------------------------------------------------------------------ records
@posix_only
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "deep", "huge", "list", "not-utf8"])
def test_a_record_that_cannot_be_read_is_a_reason_at_once(tmp_path, kind):
    from mnistkit.files.records import read_record

    model, record = tmp_path / "m.h5", tmp_path / "m.json"
    if kind == "fifo":
        os.mkfifo(record)
    elif kind == "dev-zero":
        record.symlink_to("/dev/zero")
    elif kind == "deep":
        record.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "huge":
        record.write_text(json.dumps({"notes": "x" * (2 << 20)}))
    elif kind == "list":
        record.write_text("[1, 2]")
    else:
        record.write_bytes(b'{"a": "\xff"}')
    started = time.monotonic()
    found, why = read_record(model)
    assert found is None and why.startswith("m.json: ") and "\n" not in why, why
    assert time.monotonic() - started < 2


def test_records_fields_of_the_wrong_type_are_shown_never_formatted():
    from mnistkit.files.records import describe_training, test_accuracy

    record = {"arguments": {"learning_rate": "fast", "optimizer": ["a"], "epochs": {}},
              "train_seconds": "long", "test": {"accuracy": "0.99"}}
    assert describe_training(record).startswith("['a'], {} epochs")
    for test in ({"accuracy": "0.99"}, {}, [], {"accuracy": True}, {"accuracy": 7}):
        assert test_accuracy({"test": test}) is None
    assert test_accuracy({"test": {"accuracy": 0.99}}) == 0.99


@posix_only
def test_predict_picks_the_best_model_past_records_it_cannot_use(tmp_path, monkeypatch):
    from mnistkit.read.finding import best_model

    folder = tmp_path / "models"
    folder.mkdir()
    for name, record in [("a", {"test": {"accuracy": "0.99"}}), ("b", {"test": {}}),
                         ("c", {"test": {"accuracy": 0.9}}), ("d", None)]:
        (folder / f"{name}.h5").write_bytes(b"model")
        if record is not None:
            (folder / f"{name}.json").write_text(json.dumps(record))
    os.mkfifo(folder / "d.json")
    assert best_model(folder) == folder / "c.h5"


@posix_only
def test_every_entry_named_as_a_model_gets_a_row(tmp_path):
    from mnistkit.read.finding import find_models

    (tmp_path / "folder.h5").mkdir()
    os.mkfifo(tmp_path / "fifo.h5")
    (tmp_path / "link.keras").symlink_to(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("not a model")
    found = find_models([tmp_path])
    assert {path.name for path in found.models} == {"folder.h5", "fifo.h5", "link.keras"}
    assert found.skipped == [(tmp_path / "notes.txt", "text, not HDF5, a .keras zip, TFLite, "
                                                      "ONNX or a SavedModel folder")]
    assert find_models([tmp_path / "folder.h5"]).models == [tmp_path / "folder.h5"]
    assert find_models([tmp_path / "notes.txt"]).models == [tmp_path / "notes.txt"]  # named


def test_a_name_with_a_line_break_stays_on_its_row():
    from mnistkit.report.table import markdown_table
    from mnistkit.score.evaluation import Row

    table = markdown_table([Row(path="two\nlines|bar.h5", error="bad\nfile")])
    assert len(table.splitlines()) == 3 and "two\\nlines\\|bar.h5" in table


# ------------------------------------------------------------------ pictures
def test_a_picture_that_decodes_too_long_costs_its_own_answer(tmp_path):
    from PIL import Image

    from mnistkit.prepare.pictures import ImageError
    from mnistkit.score.pictures import PictureReader

    big = tmp_path / "big.png"
    Image.effect_noise((6000, 6000), 60).save(big)  # seconds of decoding and preparing
    reader = PictureReader(timeout=0.2)
    try:
        with pytest.raises(ImageError, match=r"^the picture: no answer in 0.2 s"):
            reader.digits(big.read_bytes(), "the picture")
        reader.worker.timeout = 30
        small = tmp_path / "one.png"
        canvas = np.zeros((100, 100), np.uint8)
        canvas[20:80, 45:55] = 255
        Image.fromarray(canvas).save(small)
        digits = reader.digits(small.read_bytes(), "one.png")  # a fresh worker answers
        assert digits.dtype == np.uint8 and digits.shape == (1, 28, 28)
        with pytest.raises(ImageError, match="^notes: not a readable image"):
            reader.digits(b"just text", "notes")
    finally:
        reader.close()


# ------------------------------------------------------------------ workers
@linux_only
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_workers_die_with_their_parent_and_leave_no_files(tmp_path, name):
    how = getattr(signal, name)
    script = ("import sys, time\n"
              "from mnistkit.score.pictures import PictureReader\n"
              "reader = PictureReader()\n"
              "print(reader.worker.process.pid, flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    worker = int(parent.stdout.readline())
    # Its log is unlinked once it is open: nothing is left on disk, however the parent ends.
    assert os.readlink(f"/proc/{worker}/fd/2").endswith("(deleted)")
    parent.send_signal(how)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.05)
    assert not _alive(worker), f"worker {worker} outlived its parent ({how.name})"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------ the page's parser
class _NoModels:
    models: list = []


@pytest.fixture(scope="module")
def bare_server():
    from mnistkit.page.server import serve_in_thread

    running = serve_in_thread(_NoModels(), reader=None)
    yield running
    running.shutdown()
    running.server_close()


@pytest.mark.parametrize("raw, status", [
    (b"POST /api/predict HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n", 411),
    (b"GET /%00 HTTP/1.1\r\n\r\n", 404),
    (b"GET /a\x00b HTTP/1.1\r\n\r\n", 404),
    (b"GET /" + b"x" * 300 + b" HTTP/1.1\r\n\r\n", 404),
    (b"GET /__init__.py HTTP/1.1\r\n\r\n", 404),
    (b"GET /../server.py HTTP/1.1\r\n\r\n", 404),
    (b"POST /api/predict HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 411),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS to a plain port
])
def test_every_malformed_request_gets_a_4xx(bare_server, raw, status):
    host, port = bare_server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(raw)
        answer = connection.recv(65536)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]


def test_clients_that_hang_up_print_nothing(bare_server, capfd):
    host, port = bare_server.server_address[:2]
    for _ in range(20):
        with socket.create_connection((host, port), timeout=10) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\n\r\n")
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/")
    assert connection.getresponse().status == 200
    assert "Traceback" not in capfd.readouterr().err


# ------------------------------------------------------------------ checkpoints
def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _state(epoch: int) -> dict:
    from mnistkit.train.checkpoint import Checkpoint
    from mnistkit.train.config import TrainingConfig

    return {"epoch": epoch, "history": {"loss": [1.0] * epoch}, "epoch_seconds": [1.0] * epoch,
            "train_seconds": 1.0 * epoch,
            "settings": Checkpoint.settings(TrainingConfig(name="t", output="t.h5"))}


@pytest.mark.parametrize("damage", ["pair of two saves", "npz of 2**40 floats", "history 5",
                                    "history strings", "nested", "too few epochs"])
def test_a_damaged_or_mismatched_checkpoint_is_refused_in_one_line(tmp_path, damage):
    from mnistkit.train.checkpoint import Checkpoint, CheckpointError
    from mnistkit.train.config import TrainingConfig

    config = TrainingConfig(name="t", output=str(tmp_path / "t.h5"), epochs=5)
    checkpoint, model = Checkpoint(config.output), _tiny_model()
    checkpoint.save(model, _state(1))
    first_npz = checkpoint.variables_path.read_bytes()
    model.layers[0].kernel.assign(model.layers[0].kernel + 1)
    checkpoint.save(model, _state(2))
    state = json.loads(checkpoint.state_path.read_text())
    if damage == "pair of two saves":  # a crash between the two renames of a save
        checkpoint.variables_path.write_bytes(first_npz)
    elif damage == "npz of 2**40 floats":
        from testkit.hostile_checkpoints import forged_checkpoint

        variables, forged_state = forged_checkpoint(
            (checkpoint.variables_path.read_bytes(), b""), state)
        checkpoint.variables_path.write_bytes(variables)
        state = json.loads(forged_state)
    elif damage == "history 5":
        state["history"]["loss"] = 5
    elif damage == "history strings":
        state["history"]["loss"] = ["x", "y"]
    elif damage == "nested":
        checkpoint.state_path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        state["epoch_seconds"] = [1.0]
    if damage in ("history 5", "history strings", "too few epochs", "npz of 2**40 floats"):
        checkpoint.state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError) as refused:
        loaded = checkpoint.load_state(config)
        checkpoint.restore(_tiny_model(), loaded)
    message = str(refused.value)
    assert "cannot resume from it" in message and "\n" not in message, message


def test_a_checkpoint_restores_exactly_what_was_saved(tmp_path):
    from mnistkit.train.checkpoint import Checkpoint
    from mnistkit.train.config import TrainingConfig

    config = TrainingConfig(name="t", output=str(tmp_path / "t.h5"), epochs=5)
    checkpoint, model = Checkpoint(config.output), _tiny_model()
    checkpoint.save(model, _state(2))
    restored = _tiny_model()
    checkpoint.restore(restored, checkpoint.load_state(config))
    for saved, loaded in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


# ------------------------------------------------------------------ other outputs and inputs
@pytest.mark.parametrize("where", ["a_file/logs", pytest.param("/dev/full", marks=linux_only)])
def test_an_unusable_tensorboard_folder_is_refused_before_training(tmp_path, where):
    (tmp_path / "a_file").write_text("a file")
    done = subprocess.run([sys.executable, str(ROOT / "train_logreg.py"), "--tensorboard",
                           where, "--output", str(tmp_path / "m.h5"), "--data", "/nonexistent"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: --tensorboard {where}")


def test_a_keras_output_never_overwrites_the_record_of_an_h5_beside_it(tmp_path):
    from mnistkit.files.saving import OutputError
    from mnistkit.train.run_record import check_record_is_ours

    (tmp_path / "m.h5").write_bytes(b"a model")
    with pytest.raises(OutputError, match="is that of"):
        check_record_is_ours(str(tmp_path / "m.keras"))
    check_record_is_ours(str(tmp_path / "m.h5"))  # its own record: fine


def test_int64_labels_are_labels(tmp_path, small_mnist):
    from mnistkit.files.data import load_mnist

    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=small_mnist.train_images, y_train=small_mnist.train_labels.astype(
        np.int64), x_test=small_mnist.test_images, y_test=small_mnist.test_labels.astype(">i4"))
    loaded = load_mnist(path)
    assert loaded.train_labels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.test_labels, small_mnist.test_labels)


# ------------------------------------------------------------------ the page's answer
def test_the_page_answers_from_every_model_most_accurate_first(tmp_path):
    """One picture, three hosted models: one fails to load, one has a record it cannot use."""
    from PIL import Image

    from mnistkit.page.answers import answer
    from mnistkit.prepare.pictures import ImageError
    from mnistkit.score.hosting import HostedModel
    from mnistkit.score.pictures import PictureReader

    class Host:
        models = [HostedModel("worse.h5", record={"test": {"accuracy": 0.9}}),
                  HostedModel("broken.h5", error="not a model file: text"),
                  HostedModel("better.h5", record={"test": {"accuracy": 0.99}}),
                  HostedModel("odd.h5", record={"test": {"accuracy": "high"}})]

        @staticmethod
        def predict(path, digits):
            assert digits.dtype == np.uint8 and digits.shape[1:] == (28, 28)
            probabilities = np.full((len(digits), 10), 0.01)
            probabilities[:, 7 if path == "better.h5" else 1] = 0.91
            return probabilities

    canvas = np.zeros((120, 300), np.uint8)
    canvas[20:100, 40:50] = canvas[20:100, 200:210] = 255  # two digits written apart
    buffer = tmp_path / "two.png"
    Image.fromarray(canvas).save(buffer)
    reader = PictureReader()
    try:
        result = answer(Host(), reader, buffer.read_bytes())
        with pytest.raises(ImageError, match="^the picture: "):
            answer(Host(), reader, b"not a picture")
    finally:
        reader.close()
    assert [entry["file"] for entry in result["models"]] == [
        "better.h5", "worse.h5", "odd.h5", "broken.h5"]
    assert [entry.get("reading") for entry in result["models"]] == ["77", "11", "11", None]
    assert result["models"][2]["accuracy"] is None and result["models"][3]["error"]
    assert not result["agree"] and len(result["inputs"]) == 2
    assert result["input"].startswith("data:image/png;base64,")
