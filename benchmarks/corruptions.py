"""Time of evaluate.py --corruptions: building the 15 MNIST-C sets once, then scoring.

    python benchmarks/corruptions.py                       # trains 3 small models first
    python benchmarks/corruptions.py --models models/a.h5 models/b.h5 models/c.h5

Prints two figures: the seconds to build all 15 corrupted test sets from nothing (each
corruption timed on its own, into an empty cache folder), and the wall time of a whole
``evaluate.py --corruptions`` process on the models once the cache is there. Without
--models it first trains logreg, mlp and the deeper CNN for one epoch each (about half a
minute on 2 cores). Needs MNIST ($MNIST_DATA or --data).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL_MODELS = (("train_logreg.py", []), ("train_mlp.py", []),
                ("train_cnn.py", ["--arch", "deeper"]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path, default=None,
                        help="model files to score (default: train three small ones)")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args()


def time_build(images, cache: Path) -> dict[str, float]:
    """Seconds per corruption, building the cache file the way evaluate.py does."""
    from mnistkit.prepare import corruptions
    from mnistkit.prepare.corruption_cache import cached_corruptions

    seconds = {}
    for name in corruptions.CORRUPTIONS:  # each alone first, for the table
        started = time.perf_counter()
        corruptions.corrupt(name, images)
        seconds[name] = time.perf_counter() - started
    os.environ["MNISTKIT_CACHE"] = str(cache)
    started = time.perf_counter()
    _, built = cached_corruptions(images)  # the whole build, with the write
    assert built, "the benchmark's cache folder was not empty"
    seconds["all, written to the cache"] = time.perf_counter() - started
    return seconds


def train_small_models(folder: Path, data: str | None) -> list[Path]:
    paths = []
    for script, argv in SMALL_MODELS:
        output = folder / f"{Path(script).stem.removeprefix('train_')}.h5"
        command = [sys.executable, script, "--epochs", "1", "--quiet", "--no-plot",
                   "--output", str(output), *argv] + (["--data", data] if data else [])
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        paths.append(output)
    return paths


def time_evaluate(models: list[Path], cache: Path, data: str | None) -> float:
    """Wall time of a whole evaluate.py --corruptions process, the cache already built."""
    command = [sys.executable, "evaluate.py", *map(str, models), "--corruptions"]
    command += ["--data", data] if data else []
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MNISTKIT_CACHE": str(cache)})
    seconds = time.perf_counter() - started
    if result.returncode != 0 or "built the" in result.stdout:
        sys.exit(f"evaluate.py --corruptions failed or rebuilt:\n{result.stdout}{result.stderr}")
    print(result.stdout)
    return seconds


def main() -> None:
    args = parse_args()
    from mnistkit.files.data import load_mnist

    mnist = load_mnist(args.data)
    with tempfile.TemporaryDirectory(prefix="mnistkit-bench-") as folder:
        cache = Path(folder) / "cache"
        build = time_build(mnist.test_images, cache)
        print("| corruption | seconds |\n| --- | ---: |")
        print("\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in build.items()))
        models = args.models or train_small_models(Path(folder), args.data)
        evaluate_seconds = time_evaluate(models, cache, args.data)
    figures = {"build_seconds": build["all, written to the cache"],
               "evaluate_seconds": evaluate_seconds, "models": [str(m) for m in models],
               "per_corruption_seconds": build, "cpus": os.cpu_count()}
    print(f"building all 15 corrupted test sets: {figures['build_seconds']:.1f} s; "
          f"evaluate.py --corruptions on {len(models)} models: {evaluate_seconds:.1f} s "
          f"({os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
