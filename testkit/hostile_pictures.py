"""Hostile pictures (bombs, 1x1, blank, animated, 16-bit, CMYK, truncated, FIFOs, links)
read by predict.py beside a good picture, and posted to draw.py. Part of the sweep of
testkit.hostile."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np

from testkit.hostile import (
    FAILURES,
    NON_UTF8,
    PYTHON,
    ROOT,
    Kit,
    Result,
    error_lines,
    judge,
    run,
    write_file,
)


# --- pictures
def hostile_pictures(kit: Kit, folder: Path, quick: bool) -> tuple[list[Path], list[Path]]:
    """Pictures whose content is hostile, and paths that are not pictures at all."""
    from PIL import Image

    good = Image.open(kit.picture)
    data = kit.picture.read_bytes()
    made = [
        write_file(folder / "zeroed-tail.png", data[:len(data) // 2] + bytes(len(data) // 2)),
        write_file(folder / "truncated.png", data[:len(data) // 2]),
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
        write_file(folder / "empty.png", b""),
        write_file(folder / "text.jpg", b"hello\n" * 100),
        write_file(folder / "zeroed-middle.png", data[:100] + bytes(200) + data[300:]),
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


# --- draw
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
