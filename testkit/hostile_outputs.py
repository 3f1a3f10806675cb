"""Hostile outputs and flags: --json/--report/--output/--show onto folders, devices, links,
below files, read-only folders, non-UTF-8 names; extreme numbers for every flag. Part of the
sweep of testkit.hostile."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from testkit.hostile import (
    NON_UTF8,
    Kit,
    Result,
    judge,
    run,
    snapshot,
    write_file,
)


# --- outputs
class _Places(NamedTuple):
    """What the output flags are pointed at, made in the sweep's folder."""

    a_file: Path
    keep: Path
    link: Path  # to keep
    dangling: Path
    directory: Path
    read_only: Path


def sweep_outputs(kit: Kit, folder: Path, quick: bool) -> list[Result]:
    """Each output flag pointed at things that must not be replaced or written through."""
    places = _output_places(folder)
    watch = [places.a_file, places.keep, places.link, places.dangling, places.directory,
             Path("/dev/null")]
    cases = _quick_output_cases(kit, places)
    if not quick:
        more_cases, more_watch = _more_output_cases(kit, folder, places)
        cases += more_cases
        watch += more_watch
    results = []
    for name, argv in cases:
        before = snapshot(watch)
        done = run(argv, kit.timeout)
        results.append(Result("outputs", name, *judge(done, before, snapshot(watch))))
    places.read_only.chmod(0o755)
    return results


def _output_places(folder: Path) -> _Places:
    """A file, a symlink to another, a dangling symlink, a folder and a read-only folder."""
    a_file = write_file(folder / "a-file.txt", b"keep me\n")
    keep = write_file(folder / "keep.json", b'{"keep": true}\n')
    link = folder / "link.json"
    link.symlink_to(keep)
    dangling = folder / "dangling.json"
    dangling.symlink_to(folder / "nowhere" / "x.json")
    directory = folder / "a-folder.json"
    directory.mkdir()
    read_only = folder / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    return _Places(a_file, keep, link, dangling, directory, read_only)


def _quick_output_cases(kit: Kit, places: _Places) -> list[tuple[str, list[str]]]:
    """The cases of the quick sweep too: evaluate.py's --json and --report."""
    evaluate = ["evaluate.py", str(kit.models["logreg.h5"]), "--data", str(kit.data)]
    return [
        ("evaluate --json a folder", [*evaluate, "--json", str(places.directory)]),
        ("evaluate --json below a file", [*evaluate, "--json", str(places.a_file / "x.json")]),
        ("evaluate --json /dev/null", [*evaluate, "--json", "/dev/null"]),
        ("evaluate --json a symlink", [*evaluate, "--json", str(places.link)]),
        ("evaluate --report a file", [*evaluate, "--report", str(places.a_file)]),
    ]


def _more_output_cases(kit: Kit, folder: Path,
                       places: _Places) -> tuple[list[tuple[str, list[str]]], list[Path]]:
    """The cases of the full sweep only, with what they must leave alone besides ``places``:
    more of evaluate.py, and train_logreg.py's --output and predict.py's --show and --model."""
    good = str(kit.models["logreg.h5"])
    a_file, link = places.a_file, places.link
    model = folder / "model.h5"
    shutil.copy(good, model)
    (folder / "model.json").mkdir()  # the record's place is taken: nothing may be replaced
    trained = folder / "trained.h5"  # a diverging run must not replace it
    shutil.copy(good, trained)
    evaluate = ["evaluate.py", good, "--data", str(kit.data)]
    train = ["train_logreg.py", "--epochs", "1", "--quiet", "--data", str(kit.data)]
    cases = [
        ("evaluate --json a dangling symlink", [*evaluate, "--json", str(places.dangling)]),
        ("evaluate --json in a read-only folder",
         [*evaluate, "--json", str(places.read_only / "x.json")]),
        ("evaluate --json non-UTF-8 name", [*evaluate, "--json",
                                            str(folder / f"{NON_UTF8}.json")]),
        ("evaluate --json /proc/self/x", [*evaluate, "--json", "/proc/self/x.json"]),
        ("evaluate --report a symlink", [*evaluate, "--report", str(link)]),
        ("evaluate --report below a file", [*evaluate, "--report", str(a_file / "r")]),
        ("evaluate --report below a device", [*evaluate, "--report", "/dev/null/r"]),
        ("train --output a folder", [*train, "--output", str(folder / "dir.h5")]),
        ("train --output below a file", [*train, "--output", str(a_file / "x.h5")]),
        ("train --output a symlink", [*train, "--output", str(folder / "link.h5")]),
        ("train --output whose record is a folder", [*train, "--output", str(model)]),
        ("train_mlp --lr 1e9 sgd (NaN) over a good model",
         ["train_mlp.py", *train[1:], "--optimizer", "sgd", "--learning-rate", "1e9",
          "--output", str(trained)]),
        ("predict --show below a file",
         ["predict.py", "--model", good, "--pixels", "0-1", str(kit.picture), "--show",
          "--show-prefix", str(a_file) + "/"]),
        ("predict --show onto a folder",
         ["predict.py", "--model", good, "--pixels", "0-1", str(kit.picture), "--show",
          "--show-prefix", str(folder / "shown-")]),
        ("predict --model a folder", ["predict.py", "--model", str(folder), str(kit.picture)]),
        ("predict --model /dev/zero", ["predict.py", "--model", "/dev/zero",
                                       "--pixels", "0-1", str(kit.picture)]),
    ]
    (folder / "dir.h5").mkdir()
    (folder / "link.h5").symlink_to(model)
    (folder / "shown-good_digit.png").mkdir()
    return cases, [model, trained, folder / "dir.h5", folder / "link.h5",
                   folder / "shown-good_digit.png"]


# --- flags
def flag_cases(kit: Kit, quick: bool) -> list[tuple[str, list[str]]]:
    good = str(kit.models["logreg.h5"])
    train = ["train_logreg.py", "--epochs", "1", "--quiet", "--no-plot", "--data",
             str(kit.data), "--output", str(kit.work / "trained" / "flags.h5")]
    evaluate = ["evaluate.py", good, "--data", str(kit.data)]
    predict = ["predict.py", "--model", good, "--data", str(kit.data)]
    cases = [("train --seed -1", [*train, "--seed", "-1"]),
             ("train --batch-size 10**20", [*train, "--batch-size", str(10**20)]),
             ("train --distribute --cpu-devices 1000",
              [*train, "--distribute", "--cpu-devices", "1000"]),
             ("evaluate --timeout 1e308", [*evaluate, "--timeout", "1e308"]),
             ("predict --test-index 10**30", [*predict, "--test-index", str(10**30)])]
    if quick:
        return cases
    return cases + [
        ("train --seed 2**32", [*train, "--seed", str(2**32)]),
        ("train --epochs 0", [*train, "--epochs", "0"]),
        ("train --epochs 10**30", [*train, "--epochs", str(10**30)]),
        ("train --learning-rate nan", [*train, "--learning-rate", "nan"]),
        ("train --learning-rate -1", [*train, "--learning-rate", "-1"]),
        ("train --validation-split 1", [*train, "--validation-split", "1"]),
        ("train --target-accuracy 2", [*train, "--target-accuracy", "2"]),
        ("train --cpu-devices 100000", [*train, "--distribute", "--cpu-devices", "100000"]),
        ("evaluate --timeout 0", [*evaluate, "--timeout", "0"]),
        ("evaluate --timeout nan", [*evaluate, "--timeout", "nan"]),
        ("evaluate --timeout 1e-9", [*evaluate, "--timeout", "1e-9"]),
        ("evaluate --memory-limit 1e-9", [*evaluate, "--memory-limit", "1e-9"]),
        ("evaluate --memory-limit 1e30", [*evaluate, "--memory-limit", "1e30"]),
        ("predict --test-index -1", [*predict, "--test-index", "-1"]),
        ("draw --port 10**30", ["draw.py", "--model", good, "--port", str(10**30)]),
        ("draw --port -1", ["draw.py", "--model", good, "--port", "-1"]),
    ]


def sweep_flags(kit: Kit, quick: bool) -> list[Result]:
    (kit.work / "trained").mkdir(exist_ok=True)
    return [Result("flags", name, *judge(run(argv, kit.timeout), {}, {}))
            for name, argv in flag_cases(kit, quick)]
