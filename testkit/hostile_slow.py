"""Hostile surroundings that make the scripts wait or die rather than read a bad file, second
part (testkit.hostile_waits runs it): a model slow only on ink in draw.py, and signals and
Ctrl-C during export.py and evaluate.py. Each case is judged as in testkit.hostile, where
here: hung is also an answer that waited past the page's deadline for a slow model; orphans
is also a worker left alive, or a staging folder left beside the model; no message is a stop
without its one line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from testkit.hostile import PYTHON, ROOT, Kit, Result, Run, judge, run
from testkit.processes import _alive, _draw, _workers, signals_as_in_a_terminal

DEADLINE = 3.0  # mnistkit.page.answers.DEADLINE: how long a drawing waits for the models
# A SavedModel whose inference loops 50,000 times per inked pixel: a blank image (what
# loading traces) takes milliseconds, a drawn digit about a minute.
SLOW_ON_INK = """
import sys
import tensorflow as tf

class SlowOnInk(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def serve(self, x):
        steps = tf.reduce_sum(tf.cast(x > 0.5, tf.int32)) * 50_000
        _, spun = tf.while_loop(lambda i, s: i < steps, lambda i, s: (i + 1, s + 1.0),
                                (tf.constant(0), tf.constant(0.0)))
        logits = tf.matmul(tf.reshape(x, [-1, 784]), tf.ones([784, 10])) * 0.0 + spun * 0.0
        return {"probabilities": tf.nn.softmax(logits)}

model = SlowOnInk()
tf.saved_model.save(model, sys.argv[1], signatures={"serving_default": model.serve})
"""


def _slow_model(kit: Kit, folder: Path) -> list[Result]:
    """draw.py with a good model and one slow only on ink: each drawing answered within the
    deadline, by the good model, the slow one marked late; it never holds up a later one."""
    slow = folder / "slow_on_ink"
    (folder / "make_slow.py").write_text(SLOW_ON_INK)
    made = subprocess.run([PYTHON, str(folder / "make_slow.py"), str(slow)],
                          capture_output=True, timeout=600)
    if made.returncode != 0:
        raise SystemExit(f"could not make the slow model: {made.stderr[-2000:]}")
    argv = ["draw.py", "--pixels", "0-1", "--port", "0", "--model",
            str(kit.models["logreg.h5"]), "--model", str(slow)]
    results = []
    with _draw(argv, kit.timeout) as (_, url):
        if url is not None:
            _await_loaded(url, kit.timeout)  # draw.py serves before every model is in
        for attempt in ("first drawing", "second drawing", "third drawing"):
            if url is None:
                results.append(Result("slow model", attempt, "no response", "no address"))
                continue
            started = time.monotonic()
            request = urllib.request.Request(url + "api/predict",
                                             data=kit.picture.read_bytes(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=kit.timeout) as response:
                    models = json.loads(response.read())["models"]
            except OSError as error:
                results.append(Result("slow model", attempt, "no response", str(error)))
                continue
            seconds = time.monotonic() - started
            late = [model.get("late") for model in models if Path(model["file"]) == slow]
            read = [model.get("reading") for model in models if Path(model["file"]) != slow]
            outcome = ("hung" if seconds > DEADLINE + 10 else "lost rows" if not all(read)
                       else "evaluated" if late == [True] else "silently wrong")
            results.append(Result("slow model", attempt, outcome,
                                  f"{seconds:.1f} s; slow model late: {late}"))
    return results


def _await_loaded(url: str, timeout: float) -> None:
    """Until no model is still loading (draw.py's /api/models), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (contextlib.suppress(OSError, ValueError),
              urllib.request.urlopen(url + "api/models", timeout=10) as response):
            if not any(m.get("loading") for m in json.loads(response.read())["models"]):
                return
        time.sleep(0.2)


def _stop(argv: list[str], signum: int, ready, timeout: float) -> tuple[Run, list[int]]:
    """A script run until ``ready()`` (None: until it has a worker), then sent ``signum``
    (Ctrl-C as a terminal sends it): its run, and its workers that outlived it."""
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=signals_as_in_a_terminal)
    ready = ready or (lambda: bool(_workers(process.pid)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and not ready():
        time.sleep(0.05)
    time.sleep(1.0)  # its worker is starting or at work
    workers = _workers(process.pid)
    process.send_signal(signum)
    out, err = process.communicate(timeout=timeout)
    time.sleep(2)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return Run(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
               time.perf_counter() - started), left


def _signals(kit: Kit, folder: Path) -> list[Result]:
    """export.py stopped by SIGTERM, SIGHUP, Ctrl-C and SIGKILL while it stages, evaluate.py
    by Ctrl-C while it scores: one line, no worker left, no staging folder left (after a
    SIGKILL, none once the next export ran), no --json half-written."""
    results = []
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL):
        case = folder / f"export-{signum.name}"
        case.mkdir()
        model = case / "m.h5"
        shutil.copy(kit.models["logreg.h5"], model)
        argv = ["export.py", str(model), "--formats", "onnx", "--data", str(kit.data)]

        def staged(case: Path = case) -> list[Path]:
            return [path for path in case.iterdir() if path.name.endswith(".exports")]

        done, left = _stop(argv, signum, staged, kit.timeout)
        if signum == signal.SIGKILL:  # nothing runs: the next export must clean up
            done = run(argv, kit.timeout)
        outcome, detail = _judge_stop(done, signum)
        if left or staged():
            outcome, detail = "orphans", f"workers alive: {left}; left: {staged()}"
        results.append(Result("signals", f"export {signum.name}", outcome, detail))
    output = folder / "interrupted.json"
    good = str(kit.models["logreg.h5"])
    done, left = _stop(["evaluate.py", good, good, good, "--data", str(kit.data), "--json",
                        str(output)], signal.SIGINT, None, kit.timeout)
    outcome, detail = _judge_stop(done, signal.SIGINT)
    if left or output.exists():
        outcome, detail = "orphans", f"workers alive: {left}; --json written: {output.exists()}"
    results.append(Result("signals", "evaluate SIGINT (Ctrl-C)", outcome, detail))
    return results


def _judge_stop(done: Run, signum: int) -> tuple[str, str]:
    if signum == signal.SIGKILL:  # the run after the kill, which must have exported
        return judge(done, {}, {})
    if "Traceback (most recent call last)" in done.text:
        return "traceback", done.err.strip().splitlines()[-1][:200]
    if done.code is not None and done.code < 0:
        return "crashed", f"signal {-done.code}, no line"
    lines = [line for line in done.err.splitlines() if line.strip()]
    word = "interrupted: " if signum == signal.SIGINT else "terminated: "
    if done.code == 128 + signum and len(lines) == 1 and lines[0].startswith(word):
        return "refused", lines[0]
    return "no message", f"exit {done.code}: {lines[-1:] or ''}"
