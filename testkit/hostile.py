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
import random
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
OUTCOMES = ("refused", "evaluated", "contained", "crashed", "hung", "traceback", "lost rows",
            "replaced files", "no message", "orphans", "no response", "silently wrong")
FAILURES = OUTCOMES[3:]
# Rows of files that killed, hung or exhausted their worker process (mnistkit.read.isolation):
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


# --------------------------------------------------------------------------- model files
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
            made.append(_write(folder / f"{stem}-flip{offset}{suffix}", bytes(flipped)))
            cut = rng.randrange(len(data))
            made.append(_write(folder / f"{stem}-cut{cut}{suffix}", data[:cut]))
            start, size = rng.randrange(len(data)), rng.choice((16, 256, 4096))
            zeroed = bytearray(data)
            zeroed[start:start + size] = bytes(len(zeroed[start:start + size]))
            made.append(_write(folder / f"{stem}-zero{start}+{size}{suffix}", bytes(zeroed)))
            del index
    return made


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def crafted_models(kit: Kit, folder: Path, quick: bool) -> list[Path]:
    """Configs with absurd shapes and names, bad weights, and odd .keras zips."""
    import h5py

    source = kit.models["logreg.h5"]

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

    def dense(config) -> dict:
        return next(layer for layer in config["config"]["layers"]
                    if layer["class_name"] == "Dense")["config"]

    def weights(value):
        def apply(handle):
            def visit(_, item):
                if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                    item[...] = value
            handle["model_weights"].visititems(visit)
        return apply

    made = [
        with_config("units-1.5M.h5", lambda c: dense(c).update(units=1_500_000)),
        with_config("units-negative.h5", lambda c: dense(c).update(units=-5)),
        with_config("name-5MB.h5", lambda c: dense(c).update(name="n" * 5_000_000)),
        edit("weights-nan.h5", weights(np.nan)),
        edit("weights-inf.h5", weights(np.inf)),
        edit("config-missing.h5", lambda h: h.attrs.__delitem__("model_config")),
        _huge_config(folder / "config-1GB.keras", 2**30 if not quick else 2**28),
        _write(folder / "random.keras", random.Random(1).randbytes(5000)),
        _write(folder / "empty.h5", b""),
    ]
    if "logreg.keras" in kit.models:
        made.append(_keras_zip(folder / "no-config.keras", kit.models["logreg.keras"],
                               {"config.json"}))
    if quick:
        return made
    made += [
        with_config("units-1e12.h5", lambda c: dense(c).update(units=10**12)),
        with_config("units-float.h5", lambda c: dense(c).update(units=1e300)),
        with_config("input-negative.h5", lambda c: c["config"]["layers"][0]["config"].update(
            batch_shape=[None, -784])),
        with_config("input-huge.h5", lambda c: c["config"]["layers"][0]["config"].update(
            batch_shape=[None, 2**40])),
        with_config("name-50MB.h5", lambda c: dense(c).update(name="n" * 50_000_000)),
        with_config("activation-unknown.h5", lambda c: dense(c).update(activation="os.system")),
        with_config("lambda.h5", lambda c: c["config"]["layers"].append(
            {"class_name": "Lambda", "config": {"name": "l", "function": "print"}})),
        with_config("tfsm.h5", lambda c: c["config"]["layers"].append(
            {"class_name": "TFSMLayer", "config": {"name": "t", "filepath": "/nonexistent"}})),
        with_config("class-unknown.h5", lambda c: c.update(class_name="NoSuchModel")),
        edit("config-not-json.h5", lambda h: h.attrs.__setitem__("model_config", "{" * 10)),
        edit("config-deep.h5", lambda h: h.attrs.__setitem__(
            "model_config", "[" * 100_000 + "]" * 100_000)),
        edit("weights-huge.h5", weights(1e38)),
        edit("weights-missing.h5", lambda h: h.__delitem__("model_weights")),
        _keras_zip(folder / "no-weights.keras", kit.models["logreg.keras"],
                   {"model.weights.h5"}),
        _keras_zip(folder / "config-list.keras", kit.models["logreg.keras"], set(),
                   {"config.json": b"[]"}),
        _write(folder / "text.h5", b"not an HDF5 file\n" * 100),
    ]
    if "cnn.h5" in kit.models:
        made.append(_nan_copy(kit.models["cnn.h5"], folder / "cnn-weights-nan.h5"))
    return made


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


# --------------------------------------------------------------------------- pictures
def hostile_pictures(kit: Kit, folder: Path, quick: bool) -> tuple[list[Path], list[Path]]:
    """Pictures whose content is hostile, and paths that are not pictures at all."""
    from PIL import Image

    good = Image.open(kit.picture)
    data = kit.picture.read_bytes()
    made = [
        _write(folder / "zeroed-tail.png", data[:len(data) // 2] + bytes(len(data) // 2)),
        _write(folder / "truncated.png", data[:len(data) // 2]),
        _save(Image.new("L", (1, 1), 255), folder / "one-pixel.png"),
        _save(Image.new("L", (200, 200), 255), folder / "blank.png"),
        _png_bomb(folder / "bomb-1x170M.png", 170_000_000, 1),
        _save(good.convert("CMYK"), folder / "cmyk.jpg"),
    ]
    odd = [folder / "fifo.png", folder / "folder.png", Path("/dev/zero"),
           folder / "loop.png", folder / "missing.png"]
    os.mkfifo(odd[0])
    odd[1].mkdir()
    os.symlink(odd[3], odd[3])
    if quick:
        return made, odd
    frames = [Image.new("L", good.size, 255), good.convert("L")]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    made += [
        folder / "animated.gif",
        _save(Image.fromarray(np.asarray(good.convert("L"), np.uint16) * 257), folder /
              "sixteen-bit.png"),
        _png_bomb(folder / "bomb-13000x13000.png", 13_000, 13_000),
        _png_bomb(folder / "bomb-30000x30000.png", 30_000, 30_000),
        _write(folder / "empty.png", b""),
        _write(folder / "text.jpg", b"hello\n" * 100),
        _write(folder / "zeroed-middle.png", data[:100] + bytes(200) + data[300:]),
        _save(Image.new("RGBA", (50, 50), (0, 0, 0, 0)), folder / "transparent.png"),
        _save(good.convert("1"), folder / "bilevel.bmp"),
        _save(Image.new("L", (1, 5000), 0), folder / "line-1x5000.png"),
        _save(Image.new("F", (40, 40), float("nan")), folder / "nan.tiff"),
    ]
    unreadable = _save(good, folder / "unreadable.png")
    unreadable.chmod(0)
    utf8 = _save(good, folder / f"{NON_UTF8}.png")
    made += [unreadable, utf8]
    return made, odd


def _save(image, path: Path) -> Path:
    image.save(path)
    return path


def _png_bomb(path: Path, width: int, height: int) -> Path:
    """A gray PNG of width x height black pixels, written without ever holding them."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)
    parts = [packer.compress(row) for _ in range(height)]
    body = b"".join(parts) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def sweep_pictures(kit: Kit, pictures: list[Path], kind: str) -> list[Result]:
    """predict.py on all pictures at once beside the good one: the good one's answer must
    come, each other one gets an answer or an error line naming it. If the call as a whole
    fails, each picture is tried on its own (beside the good one) to find the culprit."""
    results = _predict_pictures(kit, pictures, kind)
    if len(pictures) > 1 and any(r.outcome in FAILURES for r in results):
        results = [result for path in pictures
                   for result in _predict_pictures(kit, [path], kind)]
    return results


def _predict_pictures(kit: Kit, pictures: list[Path], kind: str) -> list[Result]:
    done = run(["predict.py", "--model", str(kit.models["logreg.h5"]), "--pixels", "0-1",
                "--json", str(kit.picture), *map(str, pictures)], kit.timeout)
    outcome, detail = judge(done, {}, {})
    try:
        answers = {item["file"] for item in json.loads(done.out)}
    except ValueError:
        answers = set()
    if outcome in ("refused", "evaluated") and str(kit.picture) not in answers:
        outcome, detail = "lost rows", f"no answer for the good picture: {detail}"
    if outcome not in ("refused", "evaluated"):
        return [Result(kind, path.name, outcome, detail) for path in pictures]
    results = []
    for path in pictures:
        said = [line for line in error_lines(done.err) if str(path) in line]
        if str(path) in answers:
            results.append(Result(kind, path.name, "evaluated", ""))
        elif len(said) == 1:
            results.append(Result(kind, path.name, "refused", said[0][:200]))
        else:
            results.append(Result(kind, path.name, "no message",
                                  f"exit {done.code}; {len(said)} lines name it"))
    return results


# --------------------------------------------------------------------------- data
def hostile_data(kit: Kit, folder: Path, quick: bool) -> list[Path]:
    def npz(name: str, shapes: dict) -> Path:
        """An npz whose members' headers claim ``shapes``: over as many zero bytes as they
        need, up to 8 MB, else over 1,000 bytes."""
        path = folder / name
        with zipfile.ZipFile(path, "w") as archive:
            for key, (shape, dtype) in shapes.items():
                header = {"descr": np.dtype(dtype).str, "fortran_order": False,
                          "shape": shape}
                size = int(np.prod(shape)) * np.dtype(dtype).itemsize
                stream = _npy_header(header) + bytes(size if 0 <= size <= 2**23 else 1000)
                archive.writestr(f"{key}.npy", stream)
        return path

    proper = {"x_train": ((2000, 28, 28), "u1"), "y_train": ((2000,), "u1"),
              "x_test": ((500, 28, 28), "u1"), "y_test": ((500,), "u1")}
    made = [
        npz("huge-header.npz", {**proper, "x_train": ((5_000_000, 28, 28), "u1")}),
        npz("missing-keys.npz", {"x_train": proper["x_train"]}),
        _idx_bomb(folder / "gzip-bomb", 1_000_000),
        folder / "fifo.npz",
        folder / "empty-folder",
    ]
    os.mkfifo(made[3])
    made[4].mkdir()
    if quick:
        return made
    made += [
        npz("claims-300k.npz", {**proper, "x_train": ((299_000, 28, 28), "u1")}),
        npz("object-dtype.npz", {**proper, "y_train": ((2000,), "O")}),
        npz("float-images.npz", {**proper, "x_test": ((500, 28, 28), "<f8")}),
        npz("negative-shape.npz", {**proper, "x_train": ((-1, 28, 28), "u1")}),
        _idx_bomb(folder / "gzip-bomb-290k", 290_000),
        _write(folder / "not-a-zip.npz", b"PK\x03\x04" + bytes(100)),
        _write(folder / "empty.npz", b""),
        Path("/dev/zero"),
        folder / "missing",
    ]
    labels = folder / "labels-out-of-range.npz"
    mnist = np.load(kit.data)
    np.savez(labels, **{**{k: mnist[k] for k in mnist.files},
                        "y_train": np.full(2000, 200, np.uint8)})
    made.append(labels)
    locked = folder / "locked"
    locked.mkdir()
    shutil.copy(kit.data, locked / "mnist.npz")
    locked.chmod(0)
    made.append(locked)
    return made


def _npy_header(header: dict) -> bytes:
    text = repr(header).encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _idx_bomb(folder: Path, count: int) -> Path:
    """A folder of the four IDX files whose training images are ``count`` gzipped zeros."""
    folder.mkdir()
    parts = {"train-images-idx3-ubyte.gz": (3, (count, 28, 28)),
             "train-labels-idx1-ubyte.gz": (1, (count,)),
             "t10k-images-idx3-ubyte.gz": (3, (10, 28, 28)),
             "t10k-labels-idx1-ubyte.gz": (1, (10,))}
    import gzip

    for name, (ndim, shape) in parts.items():
        with gzip.open(folder / name, "wb", compresslevel=9) as stream:
            stream.write(b"\0\0\x08" + bytes([ndim]) + struct.pack(f">{ndim}I", *shape))
            size, block = int(np.prod(shape)), bytes(2**22)
            while size > 0:
                stream.write(block[:min(size, len(block))])
                size -= len(block)
    return folder


def sweep_data(kit: Kit, paths: list[Path], kind: str, training: bool) -> list[Result]:
    results = []
    good = str(kit.models["logreg.h5"])
    for path in paths:
        commands = [("evaluate", ["evaluate.py", good, "--data", str(path)]),
                    ("predict", ["predict.py", "--model", good, "--test-index", "0",
                                 "--data", str(path)])]
        if training:
            commands.append(("train", ["train_logreg.py", "--epochs", "1", "--quiet",
                                       "--no-plot", "--data", str(path), "--output",
                                       str(kit.work / "trained" / "x.h5")]))
        for script, argv in commands:
            outcome, detail = judge(run(argv, kit.timeout), {}, {})
            results.append(Result(kind, f"{script} --data {path.name}", outcome, detail))
    return results


# --------------------------------------------------------------------------- outputs
def sweep_outputs(kit: Kit, folder: Path, quick: bool) -> list[Result]:
    """Each output flag pointed at things that must not be replaced or written through."""
    a_file = _write(folder / "a-file.txt", b"keep me\n")
    keep = _write(folder / "keep.json", b'{"keep": true}\n')
    link = folder / "link.json"
    link.symlink_to(keep)
    dangling = folder / "dangling.json"
    dangling.symlink_to(folder / "nowhere" / "x.json")
    directory = folder / "a-folder.json"
    directory.mkdir()
    read_only = folder / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    watch = [a_file, keep, link, dangling, directory, Path("/dev/null")]
    good = str(kit.models["logreg.h5"])
    evaluate = ["evaluate.py", good, "--data", str(kit.data)]
    cases = [
        ("evaluate --json a folder", [*evaluate, "--json", str(directory)]),
        ("evaluate --json below a file", [*evaluate, "--json", str(a_file / "x.json")]),
        ("evaluate --json /dev/null", [*evaluate, "--json", "/dev/null"]),
        ("evaluate --json a symlink", [*evaluate, "--json", str(link)]),
        ("evaluate --report a file", [*evaluate, "--report", str(a_file)]),
    ]
    if not quick:
        model = folder / "model.h5"
        shutil.copy(good, model)
        (folder / "model.json").mkdir()  # the record's place is taken: nothing may be replaced
        trained = folder / "trained.h5"  # a diverging run must not replace it
        shutil.copy(good, trained)
        watch += [model, trained]
        train = ["train_logreg.py", "--epochs", "1", "--quiet", "--data", str(kit.data)]
        cases += [
            ("evaluate --json a dangling symlink", [*evaluate, "--json", str(dangling)]),
            ("evaluate --json in a read-only folder",
             [*evaluate, "--json", str(read_only / "x.json")]),
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
            ("predict --model a folder", ["predict.py", "--model", str(folder),
                                          str(kit.picture)]),
            ("predict --model /dev/zero", ["predict.py", "--model", "/dev/zero",
                                           "--pixels", "0-1", str(kit.picture)]),
        ]
        (folder / "dir.h5").mkdir()
        (folder / "link.h5").symlink_to(model)
        (folder / "shown-good_digit.png").mkdir()
        watch += [folder / "dir.h5", folder / "link.h5", folder / "shown-good_digit.png"]
    results = []
    for name, argv in cases:
        before = snapshot(watch)
        done = run(argv, kit.timeout)
        results.append(Result("outputs", name, *judge(done, before, snapshot(watch))))
    read_only.chmod(0o755)
    return results


# --------------------------------------------------------------------------- flags
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


# --------------------------------------------------------------------------- draw
def sweep_draw(kit: Kit, pictures: list[Path]) -> list[Result]:
    """POST each picture's bytes to draw.py's /api/predict, then a good picture: the server
    must answer every one and keep answering."""
    import urllib.error
    import urllib.request

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([PYTHON, str(ROOT / "draw.py"), "--model",
                                str(kit.models["logreg.h5"]), "--port", "0"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url, deadline = None, time.monotonic() + kit.timeout
    lines = []
    try:
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline().decode(errors="replace")
            lines.append(line)
            if "http://" in line:
                url = line[line.index("http://"):].split()[0].rstrip("/") + "/api/predict"
                break
        if url is None:
            return [Result("draw", "start draw.py", "no message", "".join(lines)[-200:])]

        def post(body: bytes) -> tuple[int | None, str]:
            request = urllib.request.Request(url, data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=kit.timeout) as response:
                    return response.status, response.read().decode(errors="replace")
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode(errors="replace")
            except (OSError, TimeoutError) as error:
                return None, str(error)

        results = []
        for path in pictures:
            try:
                body = path.read_bytes()
            except OSError:
                continue
            if len(body) > 4 * 2**20:
                continue
            status, text = post(body)
            after, _ = post(kit.picture.read_bytes())
            if status is None:
                outcome = "crashed" if process.poll() is not None else "hung"
            elif after != 200:
                outcome = "lost rows"
            elif status >= 500:
                outcome = "traceback"
            elif status == 200:
                outcome = "evaluated"
            else:
                outcome = "refused" if '"error"' in text else "no message"
            results.append(Result("draw", path.name, outcome, f"{status}: {text[:150]}"))
        return results
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait()
