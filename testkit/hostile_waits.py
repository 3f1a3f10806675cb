"""Hostile surroundings that make the scripts wait or die rather than read a bad file: the
environment (KERAS_BACKEND, PYTHONWARNINGS), thousands of entries that are no models, a model
slow only on ink in draw.py, signals and Ctrl-C during export.py and evaluate.py. Each case
is judged as in testkit.hostile, where here: hung is also an answer that waited past the
page's deadline for a slow model, or a scoring that said nothing while it ran; orphans is
also a worker process kept for a file that is no model, or a staging folder left beside the
model; no message is a stop without its one line."""

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
from testkit.surroundings import _alive, _children

ENTRIES = 5000  # empty .h5 files beside one good model (evaluate.py)
JUNK = 24  # files that are no models, each given to draw.py with --model
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


def sweep_waits(kit: Kit, folder: Path, entries: int = ENTRIES) -> list[Result]:
    """Every case of this module, against the real scripts (``entries``: how many empty
    files evaluate.py meets beside the good model)."""
    return [*_environment(kit, folder), *_many_entries(kit, folder, entries),
            *_slow_model(kit, folder), *_signals(kit, folder)]


@contextlib.contextmanager
def _environ(**changes: str):
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _environment(kit: Kit, folder: Path) -> list[Result]:
    """Backends that cannot load or train are refused in one line naming the variable; a
    dependency's warning made an error does not stop a run."""
    shim = folder / "no-jax"  # JAX stays installed: a package that fails as a missing one
    (shim / "jax").mkdir(parents=True, exist_ok=True)
    (shim / "jax" / "__init__.py").write_text("raise ImportError(\"No module named 'jax'\")\n")
    good = str(kit.models["logreg.h5"])
    train = ["train_logreg.py", "--epochs", "1", "--quiet", "--no-plot", "--data",
             str(kit.data), "--output", str(folder / "env.h5")]
    cases = [("train KERAS_BACKEND=nonsense", {"KERAS_BACKEND": "nonsense"}, train),
             ("train KERAS_BACKEND=jax, JAX missing",
              {"KERAS_BACKEND": "jax", "PYTHONPATH": str(shim)}, train),
             ("train KERAS_BACKEND=numpy", {"KERAS_BACKEND": "numpy"}, train),
             ("train PYTHONWARNINGS=error", {"PYTHONWARNINGS": "error"}, train),
             ("evaluate KERAS_BACKEND=nonsense", {"KERAS_BACKEND": "nonsense"},
              ["evaluate.py", good, "--data", str(kit.data)]),
             ("predict PYTHONWARNINGS=error", {"PYTHONWARNINGS": "error"},
              ["predict.py", "--model", good, "--pixels", "0-1", str(kit.picture)])]
    results = []
    for name, changes, argv in cases:
        with _environ(**changes):
            outcome, detail = judge(run(argv, kit.timeout), {}, {})
        if name.startswith("train KERAS") and outcome == "refused" and \
                "KERAS_BACKEND" not in detail:
            outcome = "no message"
        results.append(Result("environment", name, outcome, detail))
    return results


def _many_entries(kit: Kit, folder: Path, entries: int) -> list[Result]:
    """evaluate.py on a folder of empty .h5 files and a good model: the good row right, in
    about the time of the good model alone, saying what it does; draw.py on junk files
    beside a good model: a worker for the model and the pictures only."""
    many = folder / "many"
    many.mkdir()
    for index in range(entries):
        (many / f"empty{index}.h5").write_bytes(b"")
    shutil.copy(kit.models["logreg.h5"], many / "good.h5")
    done = run(["evaluate.py", str(many), "--data", str(kit.data), "--json",
                str(folder / "many.json")], kit.timeout)
    outcome, detail = judge(done, {}, {})
    if outcome in ("refused", "evaluated"):
        rows = {Path(row["file"]).name: row for row in
                json.loads((folder / "many.json").read_text())["models"]}
        if rows.get("good.h5", {}).get("accuracy") != kit.accuracy["logreg.h5"]:
            outcome, detail = "lost rows", "good.h5 not scored as alone"
        elif "scoring" not in done.err:
            outcome, detail = "no message", "nothing said on stderr while scoring"
    results = [Result("entries", f"evaluate {entries:,} empty .h5 + a good model", outcome,
                      f"{done.seconds:.1f} s; {detail}")]
    junk = folder / "junk"
    junk.mkdir()
    argv = ["draw.py", "--pixels", "0-1", "--port", "0", "--model", str(kit.models["logreg.h5"])]
    for index in range(JUNK):
        path = junk / f"junk{index}.h5"
        path.write_bytes([b"", b"junk\n" * index, bytes(range(200, 256)) * index][index % 3])
        argv += ["--model", str(path)]
    with _draw(argv, kit.timeout) as (process, url):
        workers = _workers(process.pid) if url else set()
    outcome = ("no response" if not url else "orphans" if len(workers) > 2 else "evaluated")
    results.append(Result("entries", f"draw {JUNK} junk .h5 + a good model", outcome,
                          f"{len(workers)} worker processes (1 model, 1 picture reader)"))
    return results


def _workers(pid: int) -> set[int]:
    """The worker processes of ``pid``: its children but multiprocessing's resource tracker."""
    found = set()
    for child in _children(pid):
        with contextlib.suppress(OSError):
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
    return found


@contextlib.contextmanager
def _draw(argv: list[str], timeout: float):
    """draw.py started, and the address it serves (None if it never said one)."""
    process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               start_new_session=True)
    url, deadline = None, time.monotonic() + timeout
    try:
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline().decode(errors="replace")
            if "http://" in line:
                url = line[line.index("http://"):].split()[0]
        yield process, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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


def _stop(argv: list[str], signum: int, ready, timeout: float) -> tuple[Run, list[int]]:
    """A script run until ``ready()`` (None: until it has a worker), then sent ``signum``
    (Ctrl-C as a terminal sends it): its run, and its workers that outlived it."""
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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
