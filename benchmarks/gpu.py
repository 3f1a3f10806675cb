"""Every script on a GPU: seconds per epoch, images per second, time to 99.0% and to 99.6%.

Runs each training script as a user would (whole processes, each preset's defaults, seed 1)
on Keras' JAX backend, then `evaluate.py` on every model it made and `predict.py` on a drawn
digit; trains in `--precision mixed` and scores that model again on the CPU alone; and times
the fast preset (99.0%) and the modern CNN (99.6%) over seeds. Prints one markdown table per
part, with the GPU's name, and writes every figure to --json. Runs in order of importance and
stops starting new runs once --budget seconds have passed.

    KERAS_BACKEND=jax python benchmarks/gpu.py --json gpu.json               # ~6 min on an H200
    KERAS_BACKEND=jax python benchmarks/gpu.py --allow-cpu --smoke --data x.npz  # dry run

Seconds per epoch leave out the first epoch, which includes compiling the training step;
"training" is everything `fit` took, compiling included, as the record states it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRESETS = {"logreg": ["train_logreg.py"], "mlp": ["train_mlp.py"],
           **{arch: ["train_cnn.py", "--arch", arch]
              for arch in ("simple", "deeper", "large", "fast", "modern")}}


def run(argv: list[str], env: dict | None = None, timeout: float = 600) -> tuple[int, str, float]:
    """Exit status, output and wall seconds of one whole process in the repository root."""
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})})
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = 124, f"timed out after {timeout:.0f} s: {expired.stdout or ''}"
    return code, output, time.perf_counter() - started


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args, self.folder = args, folder
        self.deadline = time.monotonic() + args.budget
        self.results: dict = {"runs": [], "evaluate": None, "predict": None, "mixed": []}

    def save(self) -> None:
        if self.args.json:
            self.args.json.write_text(json.dumps(self.results, indent=1))

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def train(self, label: str, preset: str, extra: list[str] = (), env: dict | None = None,
              seed: int = 1) -> dict | None:
        """One training process; its figures, or None when out of time or it failed."""
        if self.time_left() < 5:
            print(f"skipped {label} seed {seed}: out of time", flush=True)
            return None
        output = self.folder / f"{label}_{seed}.h5"
        argv = [*PRESETS[preset], "--output", str(output), "--seed", str(seed), *extra]
        if self.args.data:
            argv += ["--data", self.args.data]
        if self.args.smoke:
            argv += ["--epochs", "1"]
        code, text, wall = run(argv, env, timeout=max(90.0, self.time_left()))
        if code:
            print(f"FAILED {label} seed {seed} (exit {code}): {text[-1500:]}", flush=True)
            self.results["runs"].append({"label": label, "seed": seed, "exit": code,
                                         "tail": text[-3000:]})
            return None
        record = json.loads(output.with_suffix(".json").read_text())
        epochs = record["epoch_seconds"]
        steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
        row = {"label": label, "seed": seed, "model": str(output), "argv": argv, "env": env,
               "wall_seconds": wall, "train_seconds": record["train_seconds"],
               "first_epoch_seconds": epochs[0], "epoch_seconds": steady,
               "images_per_second": record["train_images"] / steady,
               "epochs": len(epochs), "accuracy": record["test"]["accuracy"],
               "device": record["device"], "precision": record["placement"]["precision"],
               "params": record["params"]}
        self.results["runs"].append(row)
        self.save()
        print(f"{label} seed {seed}: {row['accuracy']:.4f} in {row['train_seconds']:.2f} s of "
              f"training ({row['epochs']} epochs, {steady:.3f} s/epoch after the first), "
              f"{wall:.1f} s wall, {row['device']}", flush=True)
        return row


def every_script(bench: Bench) -> None:
    for preset in bench.args.presets:
        bench.train(preset, preset)
    bench.train("fast_unfused", "fast", env={"MNISTKIT_FUSED_STEPS": "0"})


def mixed_precision(bench: Bench) -> None:
    """Train in mixed precision on the GPU; score the float32 file it saved on the CPU."""
    for preset in ("fast", "deeper"):
        row = bench.train(f"{preset}_mixed", preset, ["--precision", "mixed"])
        if row is None:
            continue
        code, text, _ = run(["evaluate.py", row["model"], "--pixels", "0-1", "--json",
                             row["model"] + ".cpu.json"],
                            env={"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "-1"})
        cpu = json.loads(Path(row["model"] + ".cpu.json").read_text()) if code == 0 else {}
        accuracy = (cpu.get("models") or [{}])[0].get("accuracy")
        bench.results["mixed"].append({"preset": preset, "gpu_accuracy": row["accuracy"],
                                       "cpu_accuracy": accuracy, "exit": code})
        if bench.args.keep:  # to score it again on another machine
            for path in (Path(row["model"]), Path(row["model"]).with_suffix(".json")):
                shutil.copy(path, bench.args.keep / path.name)
        print(f"{preset} mixed: GPU record {row['accuracy']:.4f}, scored on the CPU alone "
              f"{accuracy} (exit {code})", flush=True)


def score_and_predict(bench: Bench) -> None:
    models = sorted(str(path) for path in bench.folder.glob("*_1.h5"))
    code, text, wall = run(["evaluate.py", *models, "--json", str(bench.folder / "eval.json")])
    bench.results["evaluate"] = {"exit": code, "seconds": wall, "tail": text[-4000:]}
    print(f"evaluate.py on {len(models)} models: exit {code}, {wall:.1f} s\n{text[-2500:]}",
          flush=True)
    from PIL import Image

    from mnistkit.files.data import load_mnist

    digit = load_mnist(bench.args.data).test_images[0]  # a 7, drawn dark on light, 5x larger
    picture = bench.folder / "seven.png"
    Image.fromarray(255 - digit).resize((140, 140)).save(picture)
    code, text, wall = run(["predict.py", str(picture), "--model", models[-1]])
    bench.results["predict"] = {"exit": code, "seconds": wall, "tail": text[-1500:]}
    print(f"predict.py: exit {code}, {wall:.1f} s\n{text[-800:]}", flush=True)


def seeds(bench: Bench, preset: str, count: int, extra: list[str] = ()) -> None:
    for seed in range(2, count + 1):
        bench.train(preset + ("_" + "_".join(extra).replace("-", "") if extra else ""),
                    preset, list(extra), seed=seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--budget", type=float, default=420,
                        help="start no run after this many seconds (default: 420)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds of the timed presets "
                        "(default: 4)")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS),
                        help="the presets to train with their defaults (default: all)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the mixed-precision models and records here (default: none)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a dry run)")
    parser.add_argument("--smoke", action="store_true", help="one epoch per run (a dry run)")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from mnistkit import backend, runtime

    backend.load_backend_quietly()
    device = runtime.device()
    print(f"{device}; {runtime.versions()}", flush=True)
    if not device.startswith("GPU") and not args.allow_cpu:
        print("error: no GPU is visible to Keras' backend (--allow-cpu for a dry run)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(args, Path(folder))
        bench.results["device"], bench.results["versions"] = device, runtime.versions()
        for part in (every_script, score_and_predict, mixed_precision,
                     lambda b: seeds(b, "fast", args.seeds),
                     lambda b: seeds(b, "modern", args.seeds)):
            part(bench)
            bench.save()
    print(markdown(bench.results))
    return 0


def markdown(results: dict) -> str:
    lines = [f"On {results['device']}:", "",
             "| run | seed | test accuracy | training (s) | first epoch (s) | s/epoch after |"
             " images/s | whole process (s) |", "| --- | ---: | ---: | ---: | ---: | ---: |"
             " ---: | ---: |"]
    for row in results["runs"]:
        if "accuracy" in row:
            lines.append(f"| {row['label']} | {row['seed']} | {row['accuracy']:.4f} | "
                         f"{row['train_seconds']:.2f} | {row['first_epoch_seconds']:.2f} | "
                         f"{row['epoch_seconds']:.3f} | {row['images_per_second']:,.0f} | "
                         f"{row['wall_seconds']:.1f} |")
        else:
            lines.append(f"| {row['label']} | {row['seed']} | failed (exit {row['exit']}) |"
                         " | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
