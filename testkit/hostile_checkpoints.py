"""Hostile inputs around the model files (issue 29), third part: train_mlp.py's checkpoints
(halves of two saves paired, tampered histories and headers) resumed with --resume, and
--tensorboard pointed where no folder can be made. Each case is judged as in
testkit.hostile, with one more failure: silently wrong (a damaged checkpoint resumed without
a word)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

from testkit.hostile import PYTHON, ROOT, Kit, Result, judge, run


def _wait_for_epoch(state: Path, epoch: int, process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads(state.read_text())["epoch"] >= epoch:
                return True
        time.sleep(0.01)
    return False


def checkpoint_pairs(kit: Kit, folder: Path) -> tuple[Path, dict[int, tuple[bytes, bytes]]]:
    """A real run of train_mlp.py killed in epoch 3 of 3, and the checkpoint's two halves
    (npz, json) as they were after epochs 1 and 2."""
    output = folder / "mlp.h5"
    argv = [PYTHON, str(ROOT / "train_mlp.py"), "--epochs", "3", "--batch-size", "1",
            "--validation-split", "0", "--no-plot", "--quiet", "--data", str(kit.data),
            "--output", str(output)]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    npz, state = output.with_suffix(".ckpt.npz"), output.with_suffix(".ckpt.json")
    pairs = {}
    try:
        for epoch in (1, 2):
            if not _wait_for_epoch(state, epoch, process, kit.timeout):
                raise SystemExit(f"train_mlp.py never finished epoch {epoch}")
            time.sleep(0.05)  # both halves renamed
            pairs[epoch] = (npz.read_bytes(), state.read_bytes())
    finally:
        process.kill()
        process.wait()
    return output, pairs


QUICK_CHECKPOINTS = ("npz of epoch 2, json of epoch 1", "npz of epoch 1, json of epoch 2",
                     "npz header of 2**40 floats", "the intact pair")


def sweep_checkpoints(kit: Kit, folder: Path, quick: bool = False) -> list[Result]:
    """--resume from a checkpoint whose halves do not belong together or were tampered with:
    refused in one line, never resumed into a different model (``quick``: the pairs, the
    forged header and the intact pair only)."""
    output, pairs = checkpoint_pairs(kit, folder)
    npz, state = output.with_suffix(".ckpt.npz"), output.with_suffix(".ckpt.json")
    second = json.loads(pairs[2][1])

    def with_state(**changes) -> tuple[bytes, bytes]:
        return pairs[2][0], json.dumps({**second, **changes}).encode()

    cases = {
        "npz of epoch 2, json of epoch 1": (pairs[2][0], pairs[1][1]),
        "npz of epoch 1, json of epoch 2": (pairs[1][0], pairs[2][1]),
        "history.loss = 5": with_state(history={**second["history"], "loss": 5}),
        'history.loss = ["x"]': with_state(history={**second["history"], "loss": ["x", "y"]}),
        "state nested 100,000 deep": (pairs[2][0], b"[" * 100_000 + b"]" * 100_000),
        "npz header of 2**40 floats": forged_checkpoint(pairs[2], second),
        "the intact pair": pairs[2],
    }
    results = []
    argv = ["train_mlp.py", "--epochs", "3", "--batch-size", "1", "--validation-split", "0",
            "--no-plot", "--quiet", "--data", str(kit.data), "--output", str(output), "--resume"]
    for name, (variables, run_state) in cases.items():
        if quick and name not in QUICK_CHECKPOINTS:
            continue
        npz.write_bytes(variables)
        state.write_bytes(run_state)
        outcome, detail = judge(run(argv, kit.timeout), {}, {})
        if name != "the intact pair" and outcome == "evaluated":
            outcome, detail = "silently wrong", f"resumed: {detail}"
        results.append(Result("checkpoints", name, outcome, detail))
        output.unlink(missing_ok=True)
    return results


def forged_checkpoint(pair: tuple[bytes, bytes], state: dict) -> tuple[bytes, bytes]:
    """The pair with the first variable's .npy header claiming 2**40 floats; the state's
    checksum follows the forged file, as a careful forger's would."""
    import hashlib
    import io
    import zipfile

    import numpy as np

    forged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pair[0])) as original, zipfile.ZipFile(forged, "w") as out:
        for name in original.namelist():
            data = original.read(name)
            if name == "v0.npy":
                header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
                header["shape"] = (2**40,)
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, header)
                data = head.getvalue() + data[len(head.getvalue()):]
            out.writestr(name, data)
    checksum = hashlib.sha256(forged.getvalue()).hexdigest()
    return forged.getvalue(), json.dumps({**state, "variables_sha256": checksum}).encode()


def sweep_tensorboard(kit: Kit, folder: Path) -> list[Result]:
    """--tensorboard at places where no folder can be made: refused before training."""
    (folder / "a_file").write_text("a file, not a folder")
    results = []
    for where in (str(folder / "a_file" / "logs"), "/dev/full", "/proc/version/logs"):
        argv = ["train_logreg.py", "--epochs", "1", "--data", str(kit.data), "--no-plot",
                "--tensorboard", where, "--output", str(folder / "m.h5")]
        outcome, detail = judge(run(argv, kit.timeout), {}, {})
        if outcome == "refused" and "--tensorboard" not in detail:
            outcome = "no message"
        results.append(Result("tensorboard", where, outcome, detail))
    return results
