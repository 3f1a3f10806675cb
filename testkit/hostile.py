"""Hostile inputs against the real commands, shared by benchmarks/hostile_sweep.py (every
case) and tests/test_hostile.py (the fast ones): small real models made with the scripts,
inputs damaged and crafted from them, the scripts run on them, and each run judged.

Each case ends as one of OUTCOMES: refused (non-zero exit, a one-line "error: ..." or a row
saying why), evaluated, contained (a file that killed, hung or exhausted its worker process:
its row says so, the others are unaffected), or one of the FAILURES.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
OUTCOMES = ("refused", "evaluated", "contained", "crashed", "hung", "traceback", "lost rows",
            "replaced files", "no message", "orphans", "no response", "silently wrong",
            "code ran")
FAILURES = OUTCOMES[3:]
# Rows of files that killed, hung or exhausted their worker process (mnistkit.workers):
# refused too, but only because the isolation caught them.
CONTAINED = ("no answer in", "crashed the model reader", "the model reader stopped",
             "crashed the picture reader", "the picture reader stopped", "needed more than")
NON_UTF8 = os.fsdecode(b"bad-\xff\xfe-name")


# --------------------------------------------------------------------------- running
@dataclass
class Result:
    kind: str
    name: str
    outcome: str
    detail: str = ""


@dataclass
class Run:
    code: int | None  # None: killed after the time limit
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def run(argv: list[str], timeout: float, cwd: Path | None = None) -> Run:
    """Run a script of this project (argv[0] relative to the repository) to its end or its
    time limit; the process group is killed after the limit."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONIOENCODING": "utf-8"}
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, str(ROOT / argv[0]), *argv[1:]], cwd=cwd or ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        code = None
    return Run(code, out.decode(errors="replace"), err.decode(errors="replace"),
               time.perf_counter() - started)


def snapshot(paths: list[Path]) -> dict[str, tuple]:
    """What each watched path is: its kind, link target and content hash."""
    state = {}
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            state[str(path)] = ("missing",)
            continue
        if stat.S_ISLNK(info.st_mode):
            state[str(path)] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            state[str(path)] = ("file", hashlib.sha256(Path(path).read_bytes()).hexdigest())
        else:
            state[str(path)] = ("other", stat.S_IFMT(info.st_mode), info.st_rdev)
    return state


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.startswith("error: ") or ": error: " in line]


def judge(result: Run, before: dict, after: dict) -> tuple[str, str]:
    """The outcome of a plain case (one hostile input per call)."""
    if result.code is None:
        return "hung", f"no end in {result.seconds:.0f} s"
    if result.code < 0:
        return "crashed", f"signal {-result.code}"
    if "Traceback (most recent call last)" in result.text:
        return "traceback", _last_line(result.err)
    if before != after:
        changed = [path for path in before if before[path] != after.get(path)]
        return "replaced files", ", ".join(changed)
    if result.code == 0:
        return "evaluated", _last_line(result.out)
    lines = error_lines(result.err) or [  # evaluate.py: the rows of the table say why
        line for line in result.out.splitlines() if "| error: " in line]
    if not lines:
        return "no message", f"exit {result.code}: {_last_line(result.text)}"
    return "refused", lines[-1][:200]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# --------------------------------------------------------------------------- setup
@dataclass
class Kit:
    """The good things each case is measured against."""

    work: Path
    data: Path  # small npz
    models: dict[str, Path] = field(default_factory=dict)  # name: good model file
    accuracy: dict[str, float] = field(default_factory=dict)  # name: its score
    picture: Path | None = None
    timeout: float = 120.0


TRAINED = {"logreg.h5": ["train_logreg.py"], "logreg.keras": ["train_logreg.py"],
           "cnn.h5": ["train_cnn.py", "--arch", "deeper"]}


def make_kit(work: Path, names: tuple[str, ...] = tuple(TRAINED), timeout: float = 120.0) -> Kit:
    """A small MNIST subset and small real models (``names`` of TRAINED) trained on it by the
    project's scripts, with their scores from evaluate.py, and a good picture of a digit."""
    from mnistkit.files.data import load_mnist

    mnist = load_mnist().subset(2000, 500)
    kit = Kit(work=work, data=work / "small.npz", timeout=timeout)
    np.savez(kit.data, x_train=mnist.train_images, y_train=mnist.train_labels,
             x_test=mnist.test_images, y_test=mnist.test_labels)
    good = work / "good"
    good.mkdir(exist_ok=True)
    for name in names:
        # A folder each: logreg.h5 and logreg.keras would share one record, logreg.json.
        output = good / name.replace(".", "_") / name
        done = run([*TRAINED[name], "--epochs", "1", "--data", str(kit.data), "--no-plot",
                    "--quiet", "--validation-split", "0", "--output", str(output)], 600)
        if done.code != 0:
            raise SystemExit(f"could not train {name}: {done.text[-2000:]}")
        kit.models[name] = output
    report = work / "baseline.json"
    done = run(["evaluate.py", *map(str, kit.models.values()), "--data", str(kit.data),
                "--json", str(report)], 600)
    for row in json.loads(report.read_text())["models"]:
        kit.accuracy[Path(row["file"]).name] = row["accuracy"]
    if done.code != 0:
        raise SystemExit(f"good models do not evaluate: {done.text[-2000:]}")
    from PIL import Image

    kit.picture = work / "good_digit.png"
    digit = 255 - mnist.test_images[0]  # dark on light, like a photo of paper
    Image.fromarray(digit).resize((112, 112)).save(kit.picture)
    return kit

def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def environment_variable(name: str, value: str):
    """The scripts run meanwhile see ``name`` set to ``value`` (as :func:`run` passes
    this process's environment on); the old value, or none, afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before
