"""Hostile inputs around the model files (issue 29): the JSON records beside models, killed
scripts and their workers, draw.py's request parser, checkpoints, TensorBoard folders. Each
case is judged as in testkit.hostile, with three more failures: orphans (a worker or a
temporary file outliving its script), no response (a request the page never answers) and
silently wrong (a damaged checkpoint resumed without a word)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from testkit.hostile import PYTHON, ROOT, Kit, Result, judge, run

RECORDS = {
    "fifo": None, "dev-zero": None, "deep": "[" * 100_000 + "]" * 100_000,
    "huge": json.dumps({"notes": "x" * (3 << 20)}), "list": "[1, 2]",
    "not-utf8": b'{"a": "\xff"}', "learning-rate-text": json.dumps(
        {"arguments": {"learning_rate": "fast", "epochs": {}}, "train_seconds": "long"}),
    "accuracy-text": json.dumps({"test": {"accuracy": "0.99"}}),
    "test-empty": json.dumps({"test": {}}),
}


def _write_record(path: Path, kind: str) -> None:
    content = RECORDS[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def sweep_records(kit: Kit, folder: Path) -> list[Result]:
    """A good model with a hostile record beside it, evaluated beside another good model and
    read by predict.py as the default model: both must be scored, the record said unreadable."""
    results = []
    good = kit.models["logreg.h5"]
    for kind in RECORDS:
        case = folder / kind
        (case / "models").mkdir(parents=True)
        model = case / "models" / "m.h5"
        shutil.copy(good, model)
        _write_record(model.with_suffix(".json"), kind)
        done = run(["evaluate.py", str(model), str(good), "--data", str(kit.data), "--json",
                    str(case / "out.json")], kit.timeout)
        outcome, detail = judge(done, {}, {})
        if outcome in ("refused", "evaluated"):
            rows = {Path(row["file"]).name: row for row in json.loads(
                (case / "out.json").read_text())["models"]} if done.code == 0 else {}
            if rows.get("m.h5", {}).get("accuracy") != kit.accuracy["logreg.h5"]:
                outcome, detail = "lost rows", f"m.h5 not scored as before: {detail}"
        results.append(Result("records", f"evaluate {kind}", outcome, detail))
        done = run(["predict.py", "--test-index", "0", "--data", str(kit.data)], kit.timeout,
                   cwd=case)
        results.append(Result("records", f"predict {kind}", *judge(done, {}, {})))
    return results


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)


def _log_on_disk(pid: int) -> bool:
    """Whether a worker's log (its stderr) is still a file on disk, to be left behind if its
    script dies: a worker unlinks nothing itself, its script must have done it already."""
    with contextlib.suppress(OSError):
        target = os.readlink(f"/proc/{pid}/fd/2")
        return "mnistkit-worker-" in target and not target.endswith("(deleted)")
    return False


def sweep_kills(kit: Kit, quick: bool = False) -> list[Result]:
    """evaluate.py, predict.py and draw.py killed by SIGTERM, SIGHUP and SIGKILL while their
    workers run (``quick``: one signal each, in turn): no worker may outlive them, no worker
    log may stay in /tmp."""
    good, results = str(kit.models["logreg.h5"]), []
    scripts = {"evaluate": ["evaluate.py", good, good, good, "--data", str(kit.data)],
               "predict": ["predict.py", "--model", good, "--pixels", "0-1", str(kit.picture)],
               "draw": ["draw.py", "--model", good, "--pixels", "0-1", "--port", "0"]}
    for number, (name, argv) in enumerate(scripts.items()):
        for how in (SIGNALS[number],) if quick else SIGNALS:
            process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=kit.work,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline, workers = time.monotonic() + kit.timeout, set()
            while time.monotonic() < deadline and process.poll() is None and not workers:
                workers = _children(process.pid) - {process.pid}
                time.sleep(0.05)
            time.sleep(1.0)  # the worker is importing the backend or scoring
            workers |= _children(process.pid)
            kept = [pid for pid in workers if _log_on_disk(pid)]
            process.send_signal(how)
            process.wait(timeout=60)
            time.sleep(3)
            left = [pid for pid in workers if _alive(pid)]
            outcome = "orphans" if left or kept else "refused"
            detail = (f"{len(workers)} workers; alive after: {left}; logs left on disk by: "
                      f"{kept}" if left or kept else f"{len(workers)} workers gone with it")
            results.append(Result("killed", f"{name} {how.name}", outcome, detail))
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return results


REQUESTS = {
    "Content-Length ²": b"POST /api/predict HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n",
    "Content-Length 10**20": b"POST /api/predict HTTP/1.1\r\nContent-Length: " + b"9" * 21
                             + b"\r\n\r\n",
    "GET /%00": b"GET /%00 HTTP/1.1\r\n\r\n",
    "GET raw NUL": b"GET /a\x00b HTTP/1.1\r\n\r\n",
    "GET 300 characters": b"GET /" + b"x" * 300 + b" HTTP/1.1\r\n\r\n",
    "GET the package's code": b"GET /server.py HTTP/1.1\r\n\r\n",
    "GET ../": b"GET /../answers.py HTTP/1.1\r\n\r\n",
    "POST empty body": b"POST /api/predict HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "POST not a picture": b"POST /api/predict HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


def sweep_requests(kit: Kit) -> list[Result]:
    """Malformed requests sent raw to a running draw.py, then clients that hang up: every
    request gets a status line, and the console shows no traceback."""
    process = subprocess.Popen([PYTHON, str(ROOT / "draw.py"), "--model",
                                str(kit.models["logreg.h5"]), "--pixels", "0-1", "--port", "0"],
                               cwd=kit.work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port, console = None, []
        while process.poll() is None and port is None:
            console.append(process.stdout.readline().decode(errors="replace"))
            if "http://" in console[-1]:
                port = int(console[-1].split("http://")[1].split("/")[0].rsplit(":", 1)[1])
        if port is None:
            return [Result("requests", "start draw.py", "no message", "".join(console)[-200:])]
        results = [Result("requests", name, *_ask(port, raw)) for name, raw in REQUESTS.items()]
        for _ in range(50):  # clients that hang up before the answer
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\n\r\n")
        outcome, detail = _ask(port, b"GET / HTTP/1.1\r\n\r\n")
        results.append(Result("requests", "50 clients hang up, then one asks", outcome, detail))
    finally:
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0].decode(errors="replace")
    if "Traceback" in out:
        results.append(Result("requests", "console", "traceback", out.strip()[-200:]))
    return results


def _ask(port: int, raw: bytes) -> tuple[str, str]:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(raw)
            answer = connection.recv(4096)
    except OSError as error:
        return "no response", str(error)
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if not status.startswith("HTTP/1."):
        return "no response", repr(answer[:80])
    code = int(status.split()[1])
    return ("evaluated" if code < 400 else "refused" if code < 500 else "traceback"), status


def _wait_for_epoch(state: Path, epoch: int, process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads(state.read_text())["epoch"] >= epoch:
                return True
        time.sleep(0.01)
    return False


def checkpoint_pairs(kit: Kit, folder: Path) -> tuple[Path, dict[int, tuple[bytes, bytes]]]:
    """A real run of train_mlp.py killed in epoch 3 of 3, and the checkpoint's two halves
    (npz, json) as they were after epochs 1 and 2."""
    output = folder / "mlp.h5"
    argv = [PYTHON, str(ROOT / "train_mlp.py"), "--epochs", "3", "--batch-size", "1",
            "--validation-split", "0", "--no-plot", "--quiet", "--data", str(kit.data),
            "--output", str(output)]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    npz, state = output.with_suffix(".ckpt.npz"), output.with_suffix(".ckpt.json")
    pairs = {}
    try:
        for epoch in (1, 2):
            if not _wait_for_epoch(state, epoch, process, kit.timeout):
                raise SystemExit(f"train_mlp.py never finished epoch {epoch}")
            time.sleep(0.05)  # both halves renamed
            pairs[epoch] = (npz.read_bytes(), state.read_bytes())
    finally:
        process.kill()
        process.wait()
    return output, pairs


QUICK_CHECKPOINTS = ("npz of epoch 2, json of epoch 1", "npz of epoch 1, json of epoch 2",
                     "npz header of 2**40 floats", "the intact pair")


def sweep_checkpoints(kit: Kit, folder: Path, quick: bool = False) -> list[Result]:
    """--resume from a checkpoint whose halves do not belong together or were tampered with:
    refused in one line, never resumed into a different model (``quick``: the pairs, the
    forged header and the intact pair only)."""
    output, pairs = checkpoint_pairs(kit, folder)
    npz, state = output.with_suffix(".ckpt.npz"), output.with_suffix(".ckpt.json")
    second = json.loads(pairs[2][1])

    def with_state(**changes) -> tuple[bytes, bytes]:
        return pairs[2][0], json.dumps({**second, **changes}).encode()

    cases = {
        "npz of epoch 2, json of epoch 1": (pairs[2][0], pairs[1][1]),
        "npz of epoch 1, json of epoch 2": (pairs[1][0], pairs[2][1]),
        "history.loss = 5": with_state(history={**second["history"], "loss": 5}),
        'history.loss = ["x"]': with_state(history={**second["history"], "loss": ["x", "y"]}),
        "state nested 100,000 deep": (pairs[2][0], b"[" * 100_000 + b"]" * 100_000),
        "npz header of 2**40 floats": forged_checkpoint(pairs[2], second),
        "the intact pair": pairs[2],
    }
    results = []
    argv = ["train_mlp.py", "--epochs", "3", "--batch-size", "1", "--validation-split", "0",
            "--no-plot", "--quiet", "--data", str(kit.data), "--output", str(output), "--resume"]
    for name, (variables, run_state) in cases.items():
        if quick and name not in QUICK_CHECKPOINTS:
            continue
        npz.write_bytes(variables)
        state.write_bytes(run_state)
        outcome, detail = judge(run(argv, kit.timeout), {}, {})
        if name != "the intact pair" and outcome == "evaluated":
            outcome, detail = "silently wrong", f"resumed: {detail}"
        results.append(Result("checkpoints", name, outcome, detail))
        output.unlink(missing_ok=True)
    return results


def forged_checkpoint(pair: tuple[bytes, bytes], state: dict) -> tuple[bytes, bytes]:
    """The pair with the first variable's .npy header claiming 2**40 floats; the state's
    checksum follows the forged file, as a careful forger's would."""
    import hashlib
    import io
    import zipfile

    import numpy as np

    forged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pair[0])) as original, zipfile.ZipFile(forged, "w") as out:
        for name in original.namelist():
            data = original.read(name)
            if name == "v0.npy":
                header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
                header["shape"] = (2**40,)
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, header)
                data = head.getvalue() + data[len(head.getvalue()):]
            out.writestr(name, data)
    checksum = hashlib.sha256(forged.getvalue()).hexdigest()
    return forged.getvalue(), json.dumps({**state, "variables_sha256": checksum}).encode()


def sweep_tensorboard(kit: Kit, folder: Path) -> list[Result]:
    """--tensorboard at places where no folder can be made: refused before training."""
    (folder / "a_file").write_text("a file, not a folder")
    results = []
    for where in (str(folder / "a_file" / "logs"), "/dev/full", "/proc/version/logs"):
        argv = ["train_logreg.py", "--epochs", "1", "--data", str(kit.data), "--no-plot",
                "--tensorboard", where, "--output", str(folder / "m.h5")]
        outcome, detail = judge(run(argv, kit.timeout), {}, {})
        if outcome == "refused" and "--tensorboard" not in detail:
            outcome = "no message"
        results.append(Result("tensorboard", where, outcome, detail))
    return results
