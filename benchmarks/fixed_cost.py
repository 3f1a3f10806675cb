"""Where a whole training process spends its time, the tutorial's plain code against ours.

Each model is trained both ways as a whole process, at the tutorial's settings (5 epochs of
the course demo's models), alternating the order over --rounds rounds. Inside each process
the stages are timed by wrapping the functions that do them (nothing in the scripts is
changed); the exit is timed from outside, from the last stage to the process's end. Printed:
the whole process both ways and its speed-up, then the stages, means over the rounds:

    start-up      interpreter, our package, reading the command line
    import        Keras and its backend (TensorFlow), finding the devices
    read MNIST    the four arrays from the local copy
    prepare       ours: the training and validation arrays laid out (the tutorial's own
                  reshaping, scaling and one-hot labels count under build)
    build         model built and compiled, up to fit's first epoch
    first epoch   its excess over a later epoch: tracing the step, first runs of kernels
    epochs        the epochs at the pace of the later ones
    test          all 10,000 test images scored
    save          ours: .h5, JSON record and the picture of the curves
    rest          whatever is left between the stages
    exit          after the script's last line, the interpreter's teardown

    python benchmarks/fixed_cost.py --data ../shared/data/mnist            # ~4 min
    python benchmarks/fixed_cost.py --models logreg --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speed import MODELS, timed_process  # noqa: E402  (the tutorials' settings, our commands)

COURSE_MODELS = ["logreg", "mlp", "simple", "deeper"]  # the course demo's four, 5 epochs
STAGES = ["start-up", "import", "read MNIST", "prepare", "build", "first epoch", "epochs",
          "test", "save", "rest", "exit"]
# The functions that do each stage, wrapped in the measured process: (module, attribute).
WRAPPED = {"import": ("mnistkit.backend", "load_backend_quietly"),
           "read MNIST": ("mnistkit.files.data", "load_mnist"),
           "prepare": ("mnistkit.prepare.batches", "split"),
           "fit": ("keras", "Model.fit"),
           "test": ("mnistkit.train.run", "evaluate_model"),
           "tutorial test": ("keras", "Model.evaluate"),
           "save": ("mnistkit.train.run", "save_run")}


def timed_run(script: str, argv: list[str], marks_path: str) -> None:
    """Run ``script`` as __main__ with the stages' functions wrapped; their start and end
    times (time.time()) go to ``marks_path`` as the process ends."""
    import atexit
    import functools
    import importlib
    import runpy

    marks: dict[str, list[float]] = {}

    def wrap(stage: str, module_name: str, attribute: str) -> None:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                marks.setdefault(stage, [start, time.time()])  # the first call

        setattr(owner, name, timed)

    def write_marks():
        marks["end"] = [time.time()] * 2
        Path(marks_path).write_text(json.dumps(marks))

    # The scripts end with os._exit, which skips atexit: wrap that too.
    real_exit = os._exit

    def exit_after_marks(status):
        write_marks()
        real_exit(status)

    os._exit = exit_after_marks
    atexit.register(write_marks)
    for stage, (module_name, attribute) in WRAPPED.items():
        if module_name != "keras":
            wrap(stage, module_name, attribute)
    # Keras last: importing it here would load TensorFlow before the import is timed.
    import mnistkit.backend as backend

    load = backend.load_backend_quietly

    def load_then_wrap_keras(*args, **kwargs):
        load(*args, **kwargs)
        for stage, (module_name, attribute) in WRAPPED.items():
            if module_name == "keras":
                wrap(stage, module_name, attribute)

    backend.load_backend_quietly = load_then_wrap_keras
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")


def measure(name: str, way: str, data: str | None, folder: Path) -> dict:
    """One whole process, timed stage by stage."""
    _, settings, command = MODELS[name]
    output = folder / f"{name}_{way}.json"
    marks_path = folder / f"{name}_{way}_marks.json"
    if way == "tutorial":
        script = str(ROOT / "benchmarks" / "speed.py")
        argv = ["--run-reference", name, "--epochs", str(settings["epochs"]),
                "--reference-output", str(output)]
    else:
        script, argv = command[0], [*command[1:], "--quiet", "--epochs",
                                    str(settings["epochs"]), "--output",
                                    str(output.with_suffix(".h5"))]
    argv += ["--data", data] if data else []
    started = time.time()  # the clock the process's marks are on
    seconds, _ = timed_process([sys.executable, __file__, "--timed-run", str(marks_path),
                                script, *argv])
    ended = started + seconds
    marks, record = json.loads(marks_path.read_text()), json.loads(output.read_text())
    return {"model": name, "way": way, "whole": ended - started,
            "stages": stages(marks, record["epoch_seconds"], started, ended),
            "test_accuracy": record["test"]["accuracy"]}


def stages(marks: dict, epoch_seconds: list[float], started: float, ended: float) -> dict:
    """Seconds per stage from the wrapped functions' times."""
    plain_epoch = statistics.mean(epoch_seconds[1:])
    fit = marks["fit"][1] - marks["fit"][0]
    test = marks.get("test") or marks["tutorial test"]
    seconds = {"start-up": marks["import"][0] - started,
               "import": marks["import"][1] - marks["import"][0],
               "read MNIST": marks["read MNIST"][1] - marks["read MNIST"][0],
               "prepare": (marks["prepare"][1] - marks["prepare"][0]) if "prepare" in marks
               else 0.0,
               "first epoch": epoch_seconds[0] - plain_epoch,
               "epochs": plain_epoch * len(epoch_seconds),
               "test": test[1] - test[0],
               "save": (marks["save"][1] - marks["save"][0]) if "save" in marks else 0.0,
               "exit": ended - marks["end"][0]}
    before_fit = marks["prepare"][1] if "prepare" in marks else marks["read MNIST"][1]
    # Building counts from the data being ready to fit's first epoch (fit's own start-up).
    seconds["build"] = marks["fit"][0] - before_fit + (fit - sum(epoch_seconds))
    seconds["rest"] = (ended - started) - sum(seconds.values())
    return seconds


def markdown(runs: list[dict]) -> str:
    lines = ["| model | tutorial whole s | ours whole s | speed-up | tutorial fixed s | "
             "ours fixed s |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    names = list(dict.fromkeys(run["model"] for run in runs))
    means = {}
    for name in names:
        for way in ("tutorial", "ours"):
            chosen = [run for run in runs if run["model"] == name and run["way"] == way]
            means[name, way] = {stage: statistics.mean(run["stages"][stage] for run in chosen)
                                for stage in STAGES}
            means[name, way]["whole"] = statistics.mean(run["whole"] for run in chosen)
        ref, own = means[name, "tutorial"], means[name, "ours"]
        lines.append(f"| {name} | {ref['whole']:.2f} | {own['whole']:.2f} | "
                     f"{ref['whole'] / own['whole']:.2f}x | "
                     f"{ref['whole'] - ref['epochs']:.2f} | {own['whole'] - own['epochs']:.2f} |")
    lines += ["", "Seconds per stage (tutorial / ours):", "",
              "| stage | " + " | ".join(names) + " |",
              "| --- |" + " ---: |" * len(names)]
    for stage in STAGES:
        cells = [f"{means[name, 'tutorial'][stage]:.2f} / {means[name, 'ours'][stage]:.2f}"
                 for name in names]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and sys.argv[1:2] == ["--timed-run"]:
        timed_run(sys.argv[3], sys.argv[4:], sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=COURSE_MODELS, default=COURSE_MODELS,
                        help=f"which models (default: {' '.join(COURSE_MODELS)})")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default: 2)")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for name in args.models:
                ways = ("tutorial", "ours") if round_number % 2 == 0 else ("ours", "tutorial")
                for way in ways:
                    runs.append(measure(name, way, args.data, Path(folder)))
                    print(f"{name:7s} {way:8s} {runs[-1]['whole']:6.2f} s  test accuracy "
                          f"{runs[-1]['test_accuracy']:.4f}", flush=True)
    table = markdown(runs)
    print(f"\n{table}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "table": table}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
