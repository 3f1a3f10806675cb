"""Hostile inputs the newer features left open: the cache of MNIST-C's corrupted test sets
changed on disk (its sets shifted to the next name, zeroed, read in Fortran order, a byte
changed, a killed writer's temporary left), symbolic links at the names a report writes, and
names longer than the file system takes. Each case is judged as in testkit.hostile; a cache
that gives other robustness scores than the good one, with exit 0, is "silently wrong"."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from testkit.hostile import Kit, Result, environment_variable, judge, run, snapshot

LONG = "x" * 260  # one name over the 255 bytes that Linux file systems take


def sweep_open_ends(kit: Kit, folder: Path) -> list[Result]:
    """Every case of this module, against the real scripts, with the good logreg.h5."""
    folder.mkdir(parents=True, exist_ok=True)
    return (_cache_cases(kit, folder / "cache") + _report_link_cases(kit, folder / "links")
            + _long_name_cases(kit, folder / "names"))


# --------------------------------------------------------------------------- the cache
def _flip_fortran_order(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data.replace(b"'fortran_order': False", b"'fortran_order': True ", 1))


def _one_byte_changed(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _stale_temporary(path: Path) -> None:
    stale = path.parent / "tmpkilled.npy.tmp"  # as a writer killed mid-save leaves it
    stale.write_bytes(bytes(1 << 20))
    os.utime(stale, (time.time() - 3600,) * 2)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "sets shifted to the next name": lambda path: np.save(path, np.roll(np.load(path), 1, 0)),
    "all zeros": lambda path: np.save(path, np.zeros_like(np.load(path))),
    "fortran_order flipped": _flip_fortran_order,
    "one byte changed": _one_byte_changed,
    "a killed writer's temporary": _stale_temporary,
}


CHANGE_SETS = set(DAMAGES) - {"a killed writer's temporary"}  # a run must rebuild these


def _robustness(kit: Kit, out: Path) -> tuple[Result, dict | None]:
    """evaluate.py --corruptions on the good model: the run judged, and the scores under
    each corruption when it was evaluated."""
    done = run(["evaluate.py", str(kit.models["logreg.h5"]), "--data", str(kit.data),
                "--corruptions", "--json", str(out)], kit.timeout * 4)
    outcome, detail = judge(done, {}, {})
    if outcome != "evaluated":
        return Result("caches", "", outcome, detail), None
    row = json.loads(out.read_text())["models"][0]
    rebuilt = "rebuilt" if "built the" in done.out else "read from the cache"
    return Result("caches", "", "evaluated", rebuilt), row["corruption_accuracy"]


def _cache_cases(kit: Kit, folder: Path) -> list[Result]:
    folder.mkdir(exist_ok=True)
    with environment_variable("MNISTKIT_CACHE", str(folder)):
        baseline, good_scores = _robustness(kit, folder / "baseline.json")
        if good_scores is None:
            baseline.name = "baseline (the cache built)"
            return [baseline]
        kept = {path: path.read_bytes() for path in folder.iterdir() if path.is_file()}
        (cache,) = folder.glob("mnist-c-*.npy")
        results = []
        for name, damage in DAMAGES.items():
            for path in folder.iterdir():
                if path not in kept and path.is_file():
                    path.unlink()
            for path, data in kept.items():
                path.write_bytes(data)
            damage(cache)
            result, scores = _robustness(kit, folder / "out.json")
            result.name = name
            if scores is not None and scores != good_scores:
                wrong = next(key for key in good_scores if scores.get(key) != good_scores[key])
                result.outcome = "silently wrong"
                result.detail = (f"{wrong}: accuracy {scores.get(wrong)}, not "
                                 f"{good_scores[wrong]}; exit 0")
            elif scores is not None and name in CHANGE_SETS and result.detail != "rebuilt":
                result.outcome = "silently wrong"  # the scores happen to agree; the sets do not
                result.detail = "scored on the changed sets; exit 0"
            left = sorted(path.name for path in folder.glob("*.npy.tmp"))
            if left and result.outcome in ("refused", "evaluated"):
                result.outcome, result.detail = "orphans", f"left in the cache: {left}"
            results.append(result)
    return results


# --------------------------------------------------------------------------- report links
def _report_link_cases(kit: Kit, folder: Path) -> list[Result]:
    """A symbolic link at one of the names a report writes, to a file outside the folder:
    the file must stay as it was, and nothing half-written may be left."""
    results = []
    for name in ("logreg_confusion.png", "comparison.png", "report.json"):
        case = folder / name.replace(".", "_")
        report = case / "report"
        report.mkdir(parents=True)
        outside = case / "outside.txt"
        outside.write_text("keep me\n")
        (report / name).symlink_to(outside)
        watched = [outside, report / name]
        before = snapshot(watched)
        done = run(["evaluate.py", str(kit.models["logreg.h5"]), "--data", str(kit.data),
                    "--report", str(report)], kit.timeout)
        result = Result("report links", f"evaluate --report, {name} a link",
                        *judge(done, before, snapshot(watched)))
        hidden = [path.name for path in report.iterdir() if path.name.startswith(".")]
        if hidden and result.outcome in ("refused", "evaluated"):
            result.outcome, result.detail = "orphans", f"left in the report: {hidden}"
        results.append(result)
    return results


# --------------------------------------------------------------------------- long names
def _long_name_cases(kit: Kit, folder: Path) -> list[Result]:
    """A name over the file system's limit, as an output, an input, or the name an export
    or a checkpoint would get beside a real model: one line, nothing lost, nothing left."""
    folder.mkdir(exist_ok=True)
    good = str(kit.models["logreg.h5"])
    long_model = folder / f"{LONG}.h5"
    fits = folder / ("m" * 250 + ".h5")  # 253 bytes; its _savedmodel folder would be 261
    shutil.copy(good, fits)
    evaluate = ["evaluate.py", good, "--data", str(kit.data)]
    cases = [
        ("evaluate --json a name too long", [*evaluate, "--json", str(folder / f"{LONG}.json")]),
        ("evaluate --report a name too long", [*evaluate, "--report", str(folder / LONG)]),
        ("draw --model a name too long", ["draw.py", "--model", str(long_model), "--port", "0"]),
        ("export a name too long", ["export.py", str(long_model), "--data", str(kit.data)]),
        ("export a 253-byte model (exports too long)",
         ["export.py", str(fits), "--data", str(kit.data)]),
        ("train --output a 253-byte name (checkpoint too long)",
         ["train_logreg.py", "--epochs", "1", "--quiet", "--no-plot", "--data", str(kit.data),
          "--output", str(folder / ("t" * 250 + ".h5"))]),
    ]
    results = []
    for name, argv in cases:
        entries = set(folder.iterdir())
        result = Result("long names", name, *judge(run(argv, kit.timeout), {}, {}))
        new = sorted(path.name[:40] for path in set(folder.iterdir()) - entries)
        if new and result.outcome in ("refused", "evaluated"):
            result.outcome, result.detail = "orphans", f"written or left: {new}"
        results.append(result)
    results.append(_long_model_beside_a_good_one(kit, folder, long_model))
    return results


def _long_model_beside_a_good_one(kit: Kit, folder: Path, long_model: Path) -> Result:
    rows = folder / "rows.json"
    done = run(["evaluate.py", str(long_model), str(kit.models["logreg.h5"]), "--data",
                str(kit.data), "--json", str(rows)], kit.timeout)
    outcome, detail = judge(done, {}, {})
    if outcome in ("refused", "evaluated"):
        found = ({row["file"]: row for row in json.loads(rows.read_text())["models"]}
                 if rows.exists() else {})
        good_row = found.get(str(kit.models["logreg.h5"]), {})
        if good_row.get("accuracy") != kit.accuracy["logreg.h5"]:
            outcome, detail = "lost rows", f"the good model's row: {good_row or 'missing'}"
        elif not found.get(str(long_model), {}).get("error"):
            outcome, detail = "no message", "no row for the long name"
    return Result("long names", "evaluate a model name too long beside a good one", outcome,
                  detail)
