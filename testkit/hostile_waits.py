"""Hostile surroundings that make the scripts wait or die rather than read a bad file, first
part: the environment (KERAS_BACKEND, PYTHONWARNINGS) and thousands of entries that are no
models. ``sweep_waits`` runs these and the second part, testkit.hostile_slow (a model slow
only on ink in draw.py, signals and Ctrl-C during export.py and evaluate.py). Each case is
judged as in testkit.hostile, where here: no message is also a scoring that said nothing
while it ran, or a backend refused without naming KERAS_BACKEND; orphans is also a worker
process kept for a file that is no model."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from testkit.hostile import Kit, Result, judge, run
from testkit.hostile_slow import _signals, _slow_model
from testkit.processes import _draw, _workers

ENTRIES = 5000  # empty .h5 files beside one good model (evaluate.py)
JUNK = 24  # files that are no models, each given to draw.py with --model


def sweep_waits(kit: Kit, folder: Path, entries: int = ENTRIES) -> list[Result]:
    """Every case of this module and of testkit.hostile_slow, against the real scripts
    (``entries``: how many empty files evaluate.py meets beside the good model)."""
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
