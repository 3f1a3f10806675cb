"""Hostile inputs against the real commands: nothing a file, path or flag can do may take a
run down.

Makes small real models (train_logreg.py and a deeper CNN, one epoch on a small subset), then
damages and crafts inputs of many kinds and runs the real scripts on them, one at a time:

    models    byte flips (0xFF), truncations and zeroed blocks of real .h5 and .keras files;
              configs with absurd shapes, huge names, NaN/inf weights, .keras zips with a huge
              or no config.json: each evaluated BESIDE a good model (evaluate.py), whose row
              must stay right
    pictures  bombs, 1x1, blank, animated, 16-bit, CMYK, truncated, zeroed tail, FIFO, folder,
              device, symlink loop, unreadable (predict.py, beside a good picture)
    data      --data: forged npz headers, gzip bombs of IDX, missing keys, FIFO, empty folder
    outputs   --json/--report/--output/--show onto folders, devices, symlinks, below files,
              read-only folders (as root, only where root is refused), non-UTF-8 names
    flags     extreme numbers
    draw      POST /api/predict of the hostile pictures
    records   JSON records beside a good model: FIFO, /dev/zero, deep, huge, wrong types
              (evaluate.py beside another good model; predict.py choosing its model)
    killed    evaluate.py, predict.py, draw.py killed by SIGTERM/SIGHUP/SIGKILL mid-run
    requests  malformed HTTP requests sent raw to draw.py, and clients that hang up
    checkpoints  --resume from halves of two saves, forged headers, wrong types, deep JSON
    tensorboard  --tensorboard below a file, on a device
    caches    the corrupted test sets' cache changed on disk (shifted, zeroed, Fortran order, a
              byte, a killed writer's temporary); links at a report's names; names too long
    waits     environment (KERAS_BACKEND, PYTHONWARNINGS=error), 5,000 entries that are no
              models, a model slow only on ink in draw.py, signals during export and evaluate
    code      SavedModels whose loading would run WriteFile (a fed IdentityN, a Saver the loader
              builds, a function named in a function's attributes), ONNX external data in a
              subgraph, .keras zips unpacking to gigabytes, a SavedModel linking outside; the
              temporary files evaluate.py and a training run leave

Each case ends as one of: refused (non-zero exit, a one-line "error: ..." or a row saying
why), evaluated (accepted, exit 0 / a row with a score), contained (a model file that killed,
hung or exhausted its worker process: its row says so, the others are unaffected), crashed
(killed by a signal), hung (no end within the time limit), traceback, lost rows (a good
file's row missing or wrong), replaced files (a watched file, symlink or device changed), no
message (non-zero exit without a line saying why), orphans (a worker or temporary file that
outlived its script), no response (a request draw.py never answered), silently wrong (a
damaged checkpoint resumed), code ran (a file's stored code wrote its marker). The targets:
zeros in the last ten columns.

    python benchmarks/hostile_sweep.py --quick            # 101 cases, ~3.5 minutes on 2 cores
    python benchmarks/hostile_sweep.py --json sweep.json  # every case (the new kinds as in --quick)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # testkit, mnistkit

from testkit.hostile import (  # noqa: E402 - after the path it is found on
    FAILURES,
    OUTCOMES,
    TRAINED,
    Kit,
    Result,
    make_kit,
)
from testkit.hostile_caches import sweep_open_ends  # noqa: E402
from testkit.hostile_checkpoints import sweep_checkpoints, sweep_tensorboard  # noqa: E402
from testkit.hostile_code import sweep_stored_code  # noqa: E402
from testkit.hostile_data import hostile_data, sweep_data  # noqa: E402
from testkit.hostile_models import crafted_models, damaged_models, sweep_models  # noqa: E402
from testkit.hostile_outputs import sweep_flags, sweep_outputs  # noqa: E402
from testkit.hostile_pictures import hostile_pictures, sweep_draw, sweep_pictures  # noqa: E402
from testkit.hostile_records import sweep_kills, sweep_records  # noqa: E402
from testkit.hostile_requests import sweep_requests  # noqa: E402
from testkit.hostile_waits import sweep_waits  # noqa: E402

KINDS = ("models", "pictures", "data", "outputs", "flags", "draw", "records", "killed",
         "requests", "checkpoints", "tensorboard", "caches", "waits", "code")


# --------------------------------------------------------------------------- table
def table(results: list[Result]) -> str:
    kinds = list(dict.fromkeys(result.kind for result in results))
    lines = ["| kind | cases | " + " | ".join(OUTCOMES) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in OUTCOMES) + " |"]
    for kind in [*kinds, "all"]:
        chosen = [r for r in results if kind in ("all", r.kind)]
        counts = [sum(r.outcome == outcome for r in chosen) for outcome in OUTCOMES]
        label = f"**{kind}**" if kind == "all" else kind
        lines.append(f"| {label} | {len(chosen)} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few cases per kind (~1.5 min)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write every case and the table as JSON")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a case may run before it counts as hung (default: 120)")
    parser.add_argument("--kinds", nargs="+", default=None,
                        choices=KINDS,
                        help="only these kinds (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    kinds = set(args.kinds or KINDS)
    work = Path(tempfile.mkdtemp(prefix="hostile-sweep-"))
    started = time.perf_counter()
    results: list[Result] = []
    try:
        print(f"training small models in {work} ...", file=sys.stderr, flush=True)
        kit = make_kit(work, ("logreg.h5", "logreg.keras") if args.quick else tuple(TRAINED),
                       timeout=args.timeout)
        sections = {
            "models": lambda: _models(kit, args.quick),
            "pictures": lambda: _pictures(kit, args.quick),
            "data": lambda: sweep_data(kit, hostile_data(kit, _folder(work, "data"),
                                                         args.quick), "data",
                                       training=not args.quick),
            "outputs": lambda: sweep_outputs(kit, _folder(work, "outputs"), args.quick),
            "flags": lambda: sweep_flags(kit, args.quick),
            "draw": lambda: sweep_draw(kit, hostile_pictures(
                kit, _folder(work, "draw"), args.quick)[0]),
            "records": lambda: sweep_records(kit, _folder(work, "records")),
            "killed": lambda: sweep_kills(kit),
            "requests": lambda: sweep_requests(kit),
            "checkpoints": lambda: sweep_checkpoints(kit, _folder(work, "checkpoints")),
            "tensorboard": lambda: sweep_tensorboard(kit, _folder(work, "tensorboard")),
            "caches": lambda: sweep_open_ends(kit, _folder(work, "caches")),
            "waits": lambda: sweep_waits(kit, _folder(work, "waits"),
                                         entries=300 if args.quick else 5000),
            "code": lambda: sweep_stored_code(kit, _folder(work, "code")),
        }
        for kind, section in sections.items():
            if kind in kinds:
                print(f"{kind} ...", file=sys.stderr, flush=True)
                found = section()
                for result in found:
                    if result.outcome in FAILURES:
                        print(f"  {result.outcome}: {result.kind} {result.name}: "
                              f"{result.detail}", file=sys.stderr, flush=True)
                results += found
    finally:
        if not args.keep:
            _unlock(work)
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    print(f"\n{len(results)} cases in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"cases": [vars(r) for r in results],
                                         "table": table(results)}, indent=2) + "\n")
    return 1 if any(r.outcome in FAILURES for r in results) else 0


def _models(kit: Kit, quick: bool) -> list[Result]:
    folder = _folder(kit.work, "models")
    damaged = damaged_models(kit, folder, 1 if quick else 8)
    crafted = crafted_models(kit, folder, quick)
    return (sweep_models(kit, damaged, "models: damaged", 12)
            + sweep_models(kit, crafted, "models: crafted", 12))


def _pictures(kit: Kit, quick: bool) -> list[Result]:
    made, odd = hostile_pictures(kit, _folder(kit.work, "pictures"), quick)
    return sweep_pictures(kit, made + odd, "pictures")


def _folder(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir(exist_ok=True)
    return folder


def _unlock(work: Path) -> None:
    for folder, dirs, files in os.walk(work):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                if not os.path.islink(os.path.join(folder, name)):
                    os.chmod(os.path.join(folder, name), 0o755)


if __name__ == "__main__":
    sys.exit(main())
