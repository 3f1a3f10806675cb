"""Damaged and crafted model files (byte flips, truncations, absurd configs, NaN weights,
zips with huge or no configs), each evaluated by evaluate.py beside a good model whose row
must stay right. Part of the sweep of testkit.hostile."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from testkit.hostile import (
    CONTAINED,
    NON_UTF8,
    Kit,
    Result,
    _last_line,
    judge,
    run,
    snapshot,
    write_file,
)


# --- model files
def damaged_models(kit: Kit, folder: Path, per_model: int, seed: int = 13) -> list[Path]:
    """Byte flips to 0xFF, truncations and zeroed blocks of each good model file."""
    rng = random.Random(seed)
    made = []
    for name, source in kit.models.items():
        data = source.read_bytes()
        stem, suffix = Path(name).stem, Path(name).suffix
        for index in range(per_model):
            offset = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[offset] = 0xFF
            made.append(write_file(folder / f"{stem}-flip{offset}{suffix}", bytes(flipped)))
            cut = rng.randrange(len(data))
            made.append(write_file(folder / f"{stem}-cut{cut}{suffix}", data[:cut]))
            start, size = rng.randrange(len(data)), rng.choice((16, 256, 4096))
            zeroed = bytearray(data)
            zeroed[start:start + size] = bytes(len(zeroed[start:start + size]))
            made.append(write_file(folder / f"{stem}-zero{start}+{size}{suffix}", bytes(zeroed)))
            del index
    return made


def crafted_models(kit: Kit, folder: Path, quick: bool) -> list[Path]:
    """Configs with absurd shapes and names, bad weights, and odd .keras zips."""
    made = _crafted_quick(kit, folder, quick)
    if quick:
        return made
    made += _crafted_more(kit, folder)
    if "cnn.h5" in kit.models:
        made.append(_nan_copy(kit.models["cnn.h5"], folder / "cnn-weights-nan.h5"))
    return made


def _crafted_quick(kit: Kit, folder: Path, quick: bool) -> list[Path]:
    """The crafted files of the quick sweep too (``quick``: a config of 256 MB, not 1 GB)."""
    edit, with_config = _editors(kit.models["logreg.h5"], folder)
    made = [
        with_config("units-1.5M.h5", lambda c: _dense(c).update(units=1_500_000)),
        with_config("units-negative.h5", lambda c: _dense(c).update(units=-5)),
        with_config("name-5MB.h5", lambda c: _dense(c).update(name="n" * 5_000_000)),
        edit("weights-nan.h5", _weights(np.nan)),
        edit("weights-inf.h5", _weights(np.inf)),
        edit("config-missing.h5", lambda h: h.attrs.__delitem__("model_config")),
        _huge_config(folder / "config-1GB.keras", 2**30 if not quick else 2**28),
        write_file(folder / "random.keras", random.Random(1).randbytes(5000)),
        write_file(folder / "empty.h5", b""),
    ]
    if "logreg.keras" in kit.models:
        made.append(_keras_zip(folder / "no-config.keras", kit.models["logreg.keras"],
                               {"config.json"}))
    return made


def _crafted_more(kit: Kit, folder: Path) -> list[Path]:
    """The crafted files of the full sweep only: more absurd configs, weights and zips."""
    edit, with_config = _editors(kit.models["logreg.h5"], folder)
    return [
        with_config("units-1e12.h5", lambda c: _dense(c).update(units=10**12)),
        with_config("units-float.h5", lambda c: _dense(c).update(units=1e300)),
        with_config("input-negative.h5", lambda c: c["config"]["layers"][0]["config"].update(
            batch_shape=[None, -784])),
        with_config("input-huge.h5", lambda c: c["config"]["layers"][0]["config"].update(
            batch_shape=[None, 2**40])),
        with_config("name-50MB.h5", lambda c: _dense(c).update(name="n" * 50_000_000)),
        with_config("activation-unknown.h5",
                    lambda c: _dense(c).update(activation="os.system")),
        with_config("lambda.h5", lambda c: c["config"]["layers"].append(
            {"class_name": "Lambda", "config": {"name": "l", "function": "print"}})),
        with_config("tfsm.h5", lambda c: c["config"]["layers"].append(
            {"class_name": "TFSMLayer", "config": {"name": "t", "filepath": "/nonexistent"}})),
        with_config("class-unknown.h5", lambda c: c.update(class_name="NoSuchModel")),
        edit("config-not-json.h5", lambda h: h.attrs.__setitem__("model_config", "{" * 10)),
        edit("config-deep.h5", lambda h: h.attrs.__setitem__(
            "model_config", "[" * 100_000 + "]" * 100_000)),
        edit("weights-huge.h5", _weights(1e38)),
        edit("weights-missing.h5", lambda h: h.__delitem__("model_weights")),
        _keras_zip(folder / "no-weights.keras", kit.models["logreg.keras"],
                   {"model.weights.h5"}),
        _keras_zip(folder / "config-list.keras", kit.models["logreg.keras"], set(),
                   {"config.json": b"[]"}),
        write_file(folder / "text.h5", b"not an HDF5 file\n" * 100),
    ]


def _editors(source: Path, folder: Path):
    """Two ways to make ``folder / name`` from a copy of ``source``: ``edit(name, change)``
    calls ``change`` on its open HDF5 file, ``with_config(name, change)`` on its config."""
    import h5py

    def edit(name: str, change) -> Path:
        target = folder / name
        shutil.copy(source, target)
        with h5py.File(target, "r+") as handle:
            change(handle)
        return target

    def with_config(name: str, change) -> Path:
        def apply(handle):
            config = json.loads(handle.attrs["model_config"])
            change(config)
            handle.attrs["model_config"] = json.dumps(config)
        return edit(name, apply)

    return edit, with_config


def _dense(config) -> dict:
    """The config of the model's first Dense layer."""
    return next(layer for layer in config["config"]["layers"]
                if layer["class_name"] == "Dense")["config"]


def _weights(value):
    """A change for ``edit``: every float weight of the model set to ``value``."""
    import h5py

    def apply(handle):
        def visit(_, item):
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                item[...] = value
        handle["model_weights"].visititems(visit)
    return apply


def _nan_copy(source: Path, target: Path) -> Path:
    import h5py

    shutil.copy(source, target)
    with h5py.File(target, "r+") as handle:
        def visit(_, item):
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                item[...] = np.nan
        handle["model_weights"].visititems(visit)
    return target


def _keras_zip(target: Path, source: Path, drop: set[str],
               replace: dict[str, bytes] | None = None) -> Path:
    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            if item.filename not in drop:
                new.writestr(item, replace.get(item.filename, old.read(item.filename)))
    return target


def _huge_config(target: Path, size: int) -> Path:
    """A small .keras zip whose config.json unpacks to ``size`` bytes of spaces."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("config.json", "w", force_zip64=True) as member:
            member.write(b"{")
            block = b" " * 2**24
            for _ in range(size // len(block)):
                member.write(block)
            member.write(b"}")
        archive.writestr("metadata.json", "{}")
    return target


def sweep_models(kit: Kit, hostile: list[Path], kind: str, batch: int) -> list[Result]:
    """evaluate.py on the hostile files in batches, each followed by a copy of a good model:
    a hostile file's row says what happened to it, the good rows must stay right."""
    results = []
    good = kit.models["logreg.h5"]
    for start in range(0, len(hostile), batch):
        folder = Path(tempfile.mkdtemp(dir=kit.work, prefix="batch"))
        files, expected = [], {}
        for index, path in enumerate(hostile[start:start + batch]):
            copy = folder / f"good{index}-{NON_UTF8 if index == 0 else 'copy'}.h5"
            shutil.copy(good, copy)
            files += [path, copy]
            expected[str(copy)] = path
        report = folder / "rows.json"
        watched = snapshot(files)
        done = run(["evaluate.py", *map(str, files), "--data", str(kit.data), "--json",
                    str(report), "--timeout", "30"], kit.timeout * (1 + len(files) // 4))
        outcome, detail = judge(done, watched, snapshot(files))
        if outcome in ("hung", "crashed", "traceback", "replaced files") or not report.exists():
            if outcome in ("refused", "evaluated", "no message"):
                outcome, detail = "lost rows", f"no JSON written: {_last_line(done.text)}"
            results += [Result(kind, path.name, outcome, detail) for path in files[::2]]
            continue
        rows = {row["file"]: row for row in json.loads(report.read_text())["models"]}
        for path in files[::2]:
            row = rows.get(str(path))
            copy = next(c for c, h in expected.items() if h == path)
            good_row = rows.get(copy)
            if (row is None or good_row is None
                    or good_row.get("accuracy") != kit.accuracy["logreg.h5"]):
                results.append(Result(kind, path.name, "lost rows",
                                      f"good row after it: {good_row and good_row.get('error')}"))
            elif "Traceback" in str(row.get("error")) or "\n" in str(row.get("error")):
                results.append(Result(kind, path.name, "traceback", str(row["error"])[:200]))
            elif row.get("error"):
                contained = row["error"].startswith(CONTAINED)
                results.append(Result(kind, path.name, "contained" if contained else "refused",
                                      row["error"][:200]))
            else:
                note = f"accuracy {row['accuracy']}" + (
                    f"; warning: {row['warning']}" if row.get("warning") else "")
                results.append(Result(kind, path.name, "evaluated", note))
    return results
