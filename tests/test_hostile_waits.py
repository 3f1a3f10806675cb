"""What makes the scripts wait or die around the model files rather than in them: the
environment (a backend that cannot load, warnings made errors), thousands of entries that
are no models, a model slow only on ink, signals and Ctrl-C mid-export. Each must end in one
line or run normally; none may cost a worker process per junk file or a leftover folder."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.conftest import ROOT, ctrl_c_as_in_a_terminal, posix_only, save_npz
from tests.hostile_tasks import HostileTasks

TRAIN = ["train_logreg.py", "--epochs", "1", "--no-plot", "--quiet", "--validation-split", "0"]


def script(argv, env=None, timeout=300, **options):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, **options)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, small_mnist):
    path = tmp_path_factory.mktemp("data") / "small.npz"
    save_npz(small_mnist.subset(len(small_mnist.train_labels), 500), path)
    return path


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """An untrained Dense(10) on 784 pixels, saved as .h5: a real model, made in a second."""
    import keras

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "m.h5"
    model.save(path)
    return path


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------ the environment
@pytest.mark.parametrize("backend,words", [
    ("nonsense", ("KERAS_BACKEND=nonsense: not a backend Keras has", "tensorflow, jax or torch")),
    ("jax", ("KERAS_BACKEND=jax: jax cannot be imported", "requirements-jax.txt")),
    ("numpy", ("KERAS_BACKEND=numpy: Keras cannot train on numpy", "tensorflow, jax or torch")),
])
def test_a_backend_that_cannot_load_or_train_is_one_line(tmp_path, backend, words):
    shim = tmp_path / "shim"  # JAX is installed here: a package that fails as a missing one
    (shim / "jax").mkdir(parents=True)
    (shim / "jax" / "__init__.py").write_text("raise ImportError(\"No module named 'jax'\")\n")
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim),
                                                          os.environ.get("PYTHONPATH")]))
    result = script([*TRAIN, "--output", str(tmp_path / "m.h5")], env)
    line = one_line(result.stderr)
    assert result.returncode == 2 and line.startswith("error: ")
    assert all(word in line for word in words), line
    assert not (tmp_path / "m.h5").exists()


def test_warnings_made_errors_do_not_stop_training(tmp_path, small_npz):
    """The backends' own deprecation warnings stay warnings: the run ends normally."""
    output = tmp_path / "m.h5"
    result = script([*TRAIN, "--data", str(small_npz), "--output", str(output)],
                    {"PYTHONWARNINGS": "error"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert output.exists() and output.with_suffix(".json").exists()


# ------------------------------------------------------------------ many entries
class CountedWorker:
    """The real Worker, counted: how many started and which task each was asked to run."""

    started: list = []
    asked: list = []

    def __new__(cls, *arguments, **options):
        from mnistkit.workers.process import Worker

        worker = Worker(*arguments, **options)
        cls.started.append(worker)
        call = worker.call

        def counted(task, *arguments, **keywords):
            cls.asked.append(task)
            return call(task, *arguments, **keywords)

        worker.call = counted
        return worker


@pytest.fixture
def counted(monkeypatch):
    from mnistkit.score import model_reader

    monkeypatch.setattr(model_reader, "Worker", CountedWorker)
    CountedWorker.started, CountedWorker.asked = [], []
    return CountedWorker


def test_entries_that_are_not_models_get_their_rows_without_a_worker(tmp_path, small_mnist,
                                                                      counted, capsys):
    from mnistkit.score.model_files import score_files
    from mnistkit.score.model_tasks import ModelTasks

    junk = []
    for index in range(300):
        junk.append(tmp_path / f"empty{index}.h5")
        junk[-1].write_bytes(b"")
    (tmp_path / "notes.h5").write_text("not a model\n")
    (tmp_path / "folder").mkdir()
    paths = [*junk, tmp_path / "notes.h5", tmp_path / "folder", tmp_path / "good_1.h5"]
    results, about = score_files(paths, small_mnist, timeout=30, tasks=HostileTasks)
    assert [row.path for row, _ in results] == [str(path) for path in paths]
    assert all("not a model file: an empty file" in row.error for row, _ in results[:300])
    assert "not a model file: text" in results[300][0].error
    assert "a folder without saved_model.pb" in results[301][0].error
    assert results[302][0].error is None and results[302][0].accuracy == 0.99
    # one worker, asked about the one file that might be a model (good_1.h5: missing here,
    # so only a worker can say; the hostile handler scores it)
    assert len(counted.started) == 1
    assert counted.asked == [ModelTasks.about, ModelTasks.score]
    assert "scoring 1 model file of 303 entries; the other 302 are not model files" in \
        capsys.readouterr().err
    assert about["device"].startswith(("CPU", "GPU"))


def test_only_junk_starts_no_worker_at_all(tmp_path, small_mnist, counted):
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.model_files import score_files

    paths = [tmp_path / f"junk{index}.h5" for index in range(24)]
    for index, path in enumerate(paths):  # empty, text, binary
        path.write_bytes([b"", b"junk\n" * index, bytes(range(200, 256)) * index][index % 3])
    results, about = score_files(paths, small_mnist)
    assert all(row.error.startswith("not a model file") for row, _ in results)
    host = ModelHost(paths, pixels="0-1")
    host.start()
    host.close()
    assert all(model.error.startswith("not a model file") for model in host.models)
    assert counted.started == [] and about["device"] == "none"


def test_a_model_that_fails_to_load_keeps_no_worker(small_mnist, counted):
    from mnistkit.score.hosting import ModelHost

    host = ModelHost(["good.h5", "segfault.h5"], pixels="0-1", timeout=30,
                     tasks=HostileTasks)
    try:
        host.start()
        errors = {model.path: model.error for model in host.models}
        assert errors["good.h5"] is None and "crashed the model reader" in errors["segfault.h5"]
        assert len(counted.started) == 2
        assert [worker.process.is_alive() for worker in counted.started].count(True) == 1
    finally:
        host.close()


# ------------------------------------------------------------------ a model slow on ink
def digit_png(mnist) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(255 - mnist.test_images[0]).resize((112, 112)).save(buffer, format="PNG")
    return buffer.getvalue()


def post(url: str, body: bytes) -> tuple[dict, float]:
    started = time.monotonic()
    request = urllib.request.Request(url + "api/predict", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read()), time.monotonic() - started


@pytest.mark.slow
def test_a_model_slow_on_ink_is_marked_late_and_the_others_answer(small_mnist):
    from mnistkit.page.server import DrawServer
    from mnistkit.score.hosting import ModelHost
    from mnistkit.score.pictures import PictureReader

    # slow_on_ink loads (blank images) and then sleeps on any ink until its worker's limit
    host = ModelHost(["good.h5", "slow_on_ink.h5"], pixels="0-1", timeout=6,
                     tasks=HostileTasks)
    host.start()
    reader = PictureReader()
    server = DrawServer(("127.0.0.1", 0), host, reader, deadline=1.0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = digit_png(small_mnist)
        answers = []
        for _ in range(2):
            data, seconds = post(server.url, body)
            models = {model["file"]: model for model in data["models"]}
            assert models["good.h5"]["reading"] and "late" not in models["good.h5"]
            assert models["slow_on_ink.h5"]["late"] is True
            assert seconds < 30  # the deadline and the picture's decoding, not the model's
            answers.append(models["slow_on_ink.h5"]["error"])
        assert answers[0] == "no answer within 1 s; left out"
        assert answers[1].startswith("still busy with an earlier drawing")
        deadline = time.monotonic() + 120
        while answers[-1].startswith("still busy") and time.monotonic() < deadline:
            time.sleep(1)  # until its worker's limit passed: replaced, the model reloaded
            data, _ = post(server.url, body)
            answers.append(next(model["error"] for model in data["models"]
                                if model["file"] == "slow_on_ink.h5"))
        assert answers[-1] == "no answer within 1 s; left out"  # asked afresh, late again
        assert host._readers["slow_on_ink.h5"].starts == 2
    finally:
        server.shutdown()
        server.server_close()
        host.close()
        reader.close()


# ------------------------------------------------------------------ signals and Ctrl-C
def wait_for(condition, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never came: {process.communicate()}")


@posix_only
@pytest.mark.parametrize("name,status,word", [("SIGTERM", 143, "terminated"),
                                              ("SIGHUP", 129, "terminated"),
                                              ("SIGINT", 130, "interrupted")])
def test_export_stopped_by_a_signal_leaves_nothing_behind(tmp_path, keras_file, small_npz,
                                                          name, status, word):
    signum = getattr(signal, name)
    model = tmp_path / "m.h5"
    model.write_bytes(keras_file.read_bytes())
    process = subprocess.Popen([sys.executable, "export.py", str(model), "--formats", "onnx",
                                "--data", str(small_npz)], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=ctrl_c_as_in_a_terminal)
    wait_for(lambda: any(p.name.endswith(".exports") for p in tmp_path.iterdir()), process)
    time.sleep(1)  # its worker is starting, or scoring
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status
    assert one_line(stderr) == f"{word}: export stopped; no export is left half-written"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.h5"]


def test_the_next_export_removes_what_a_kill_left(tmp_path):
    from mnistkit.write.exports import staging_folder

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f".m.{gone.pid}.k1ll3d_x.exports"
    (stale / "m_float.onnx").parent.mkdir()
    (stale / "m_float.onnx").write_bytes(b"half")
    live = tmp_path / f".m.{os.getpid()}.running.exports"  # another export, still going
    other = tmp_path / f".m.5.{gone.pid}.abc.exports"  # m.5.h5's, not m.h5's
    live.mkdir()
    other.mkdir()
    made = staging_folder(tmp_path / "m.h5")
    assert not stale.exists() and live.exists() and other.exists()
    assert made.name.startswith(f".m.{os.getpid()}.") and made.name.endswith(".exports")


@posix_only
def test_evaluate_interrupted_is_one_line_and_writes_nothing(tmp_path, keras_file, small_npz):
    from testkit.processes import _children

    process = subprocess.Popen([sys.executable, "evaluate.py", str(keras_file), str(keras_file),
                                "--data", str(small_npz), "--json", str(tmp_path / "r.json")],
                               cwd=ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=ctrl_c_as_in_a_terminal)
    wait_for(lambda: _children(process.pid), process)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert one_line(stderr) == "interrupted: evaluation stopped; no output is left half-written"
    assert not (tmp_path / "r.json").exists()


@posix_only
def test_signals_wait_for_renames_that_belong_together(tmp_path, monkeypatch):
    from mnistkit.files.saving import move_into_place
    from mnistkit.interrupts import Terminated, stop_on_signals

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    staged = {}
    for name in ("a", "b", "c"):
        (tmp_path / f".{name}").write_text(name)
        staged[tmp_path / f".{name}"] = tmp_path / name
    renamed = []

    def rename_then_signal(source, target):  # SIGTERM arrives after the first rename
        original(source, target)
        renamed.append(target.name)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    original = os.replace
    monkeypatch.setattr(os, "replace", rename_then_signal)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop_on_signals()
        with pytest.raises(Terminated):
            move_into_place(staged)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert renamed == ["a", "b", "c"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b", "c"]
