"""Hostile inputs around the model files (issue 29), first part: the JSON records beside
models, and the scripts killed (SIGTERM, SIGHUP, SIGKILL) while their workers run. Each
case is judged as in testkit.hostile, with one more failure: orphans (a worker or a
temporary file outliving its script). Requests are in testkit.hostile_requests, checkpoints
and TensorBoard folders in testkit.hostile_checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from testkit.hostile import PYTHON, ROOT, Kit, Result, judge, run
from testkit.processes import _alive, _children, signals_as_in_a_terminal

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
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       preexec_fn=signals_as_in_a_terminal)
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
