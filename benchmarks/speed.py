"""Training speed: the tutorials' plain Keras code against this project's scripts.

Each model is trained both ways at the tutorial's settings, in separate processes, in
alternating order, on this machine. Printed as a Markdown table (and written as JSON):
seconds per epoch (the mean of the epochs after the first, which also traces the graph;
a mean, not a median, so that the stalls users wait through count), images per second,
the speed-up, whole-process seconds, peak resident memory and test accuracy.
It then measures how long the deeper CNN takes to reach the tutorial's 98.4%.

    python benchmarks/speed.py --data ../shared/data/mnist            # everything, ~30 min
    python benchmarks/speed.py --quick                                # ~1 minute
    python benchmarks/speed.py --models logreg deeper --epochs 2
    python benchmarks/speed.py --table-from results.json              # re-print a saved run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, it still finds mnistkit

# name: (tutorial, its settings, the project's command for the same settings)
MODELS = {
    "logreg": ("course demo", dict(epochs=5, batch_size=128, validation_split=0.2,
                                   optimizer="adam"), ["train_logreg.py"]),
    "logreg_sgd": ("blog", dict(epochs=50, batch_size=32, validation_split=0.0,
                                optimizer="sgd"), ["train_logreg.py"]),
    "mlp": ("course demo", dict(epochs=5, batch_size=128, validation_split=0.2,
                                optimizer="adam"), ["train_mlp.py"]),
    "simple": ("course demo", dict(epochs=5, batch_size=128, validation_split=0.2,
                                   optimizer="adam"), ["train_cnn.py", "--arch", "simple"]),
    "deeper": ("course demo", dict(epochs=5, batch_size=128, validation_split=0.2,
                                   optimizer="adam"), ["train_cnn.py", "--arch", "deeper"]),
    "large": ("blog", dict(epochs=10, batch_size=32, validation_split=0.0, optimizer="adam"),
              ["train_cnn.py", "--arch", "large"]),
}
# Time to the tutorial's 98.4% with the deeper CNN: settings found by trying (README).
# One epoch of small batches with a one-cycle schedule: 98.6-98.7% on seeds 1-3.
FAST_DEEPER = ["train_cnn.py", "--arch", "deeper", "--epochs", "1", "--batch-size", "48",
               "--learning-rate", "0.005", "--schedule", "onecycle", "--validation-split", "0",
               "--target-accuracy", "0.984"]


def reference_model(name: str):
    """The tutorials' models as they wrote them (in Keras 3 spelling)."""
    import keras
    from keras.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D

    model = keras.Sequential()
    if name in ("logreg", "logreg_sgd"):
        model.add(keras.Input((784,)))
        model.add(Dense(10, activation="softmax"))
    elif name == "mlp":
        model.add(keras.Input((784,)))
        model.add(Dense(512, activation="relu"))
        model.add(Dense(10, activation="softmax"))
    else:
        model.add(keras.Input((28, 28, 1)))
        if name in ("simple", "deeper"):
            model.add(Conv2D(32, (3, 3), activation="relu"))
            model.add(MaxPooling2D((2, 2)))
            if name == "deeper":
                model.add(Conv2D(32, (3, 3), activation="relu"))
                model.add(MaxPooling2D((2, 2)))
        else:  # the blog's CNN, channels_last throughout
            model.add(Conv2D(64, (3, 3)))
            model.add(Activation("relu"))
            model.add(Conv2D(32, (3, 3)))
            model.add(Activation("relu"))
            model.add(MaxPooling2D(pool_size=(2, 2)))
            model.add(Dropout(0.25))
        model.add(Flatten())
        if name == "large":
            model.add(Dense(256))
            model.add(Activation("relu"))
            model.add(Dropout(0.5))
        model.add(Dense(10, activation="softmax"))
    return model


def run_reference(name: str, epochs: int, data: str | None, output: str) -> None:
    """The tutorial's plain code: one-hot labels, model.fit on arrays, model.evaluate."""
    from mnistkit import runtime

    runtime.load_backend_quietly()
    import keras

    from mnistkit.callbacks import EpochTimer
    from mnistkit.data import load_mnist

    _, settings, _ = MODELS[name]
    mnist = load_mnist(data)
    shape = (784,) if name in ("logreg", "logreg_sgd", "mlp") else (28, 28, 1)
    x_train = mnist.train_images.reshape((-1, *shape)).astype("float32") / 255
    x_test = mnist.test_images.reshape((-1, *shape)).astype("float32") / 255
    y_train = keras.utils.to_categorical(mnist.train_labels)
    y_test = keras.utils.to_categorical(mnist.test_labels)
    keras.utils.set_random_seed(1)
    model = reference_model(name)
    model.compile(optimizer=settings["optimizer"], loss="categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(x_train, y_train, validation_split=settings["validation_split"], epochs=epochs,
              batch_size=settings["batch_size"], verbose=0, callbacks=[timer])
    train_seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    Path(output).write_text(json.dumps({
        "epoch_seconds": timer.seconds, "train_seconds": train_seconds,
        "test": {"accuracy": accuracy, "loss": loss},
        "train_images": round(len(x_train) * (1 - settings["validation_split"]))}))


def timed_process(argv: list[str]) -> tuple[float, float]:
    """Run ``argv``; its wall seconds and peak resident memory in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed:\n{process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def measure(name: str, way: str, epochs: int, data: str | None, folder: Path) -> dict:
    _, settings, command = MODELS[name]
    result_path = folder / f"{name}_{way}.json"
    if way == "tutorial":
        argv = [sys.executable, __file__, "--run-reference", name, "--epochs", str(epochs),
                "--reference-output", str(result_path)]
    else:
        argv = [sys.executable, *command, "--quiet", "--epochs", str(epochs),
                "--batch-size", str(settings["batch_size"]), "--optimizer", settings["optimizer"],
                "--validation-split", str(settings["validation_split"]),
                "--output", str(result_path.with_suffix(".h5"))]
    if data:
        argv += ["--data", data]
    process_seconds, peak_mib = timed_process(argv)
    record = json.loads(result_path.read_text())
    run = {"model": name, "way": way, "epochs": epochs, "epoch_seconds": record["epoch_seconds"],
           "train_images": record["train_images"], "process_seconds": process_seconds,
           "peak_mib": peak_mib, "test_accuracy": record["test"]["accuracy"]}
    return with_rates(run)


def with_rates(run: dict) -> dict:
    """Add seconds per epoch (mean after the first epoch) and images per second to ``run``."""
    steady = run["epoch_seconds"][1:] or run["epoch_seconds"]
    run["seconds_per_epoch"] = statistics.mean(steady)
    run["images_per_second"] = run["train_images"] / run["seconds_per_epoch"]
    return run


def time_to_accuracy(data: str | None, folder: Path) -> dict:
    output = folder / "deeper_fast.h5"
    argv = [sys.executable, *FAST_DEEPER, "--quiet", "--output", str(output)]
    if data:
        argv += ["--data", data]
    process_seconds, peak_mib = timed_process(argv)
    record = json.loads(output.with_suffix(".json").read_text())
    target = record["target_accuracy"]
    return {"command": " ".join(FAST_DEEPER), "reached": target["reached_epoch"] is not None,
            "epochs": target["reached_epoch"], "train_seconds_to_target": target["seconds"],
            "test_accuracy": record["test"]["accuracy"], "process_seconds": process_seconds,
            "peak_mib": peak_mib}


def markdown(results: list[dict], fast: dict | None) -> str:
    lines = ["| model | epochs | tutorial s/epoch | ours s/epoch | speed-up | tutorial img/s | "
             "ours img/s | tutorial process s | ours process s | tutorial peak MiB | "
             "ours peak MiB | tutorial test acc | ours test acc |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: |"]
    for name in dict.fromkeys(r["model"] for r in results):
        ref = _mean_of([r for r in results if r["model"] == name and r["way"] == "tutorial"])
        own = _mean_of([r for r in results if r["model"] == name and r["way"] == "ours"])
        speedup = ref["seconds_per_epoch"] / own["seconds_per_epoch"]
        lines.append(
            f"| {name} | {ref['epochs']} | {ref['seconds_per_epoch']:.2f} | "
            f"{own['seconds_per_epoch']:.2f} | {speedup:.2f}x | "
            f"{ref['images_per_second']:,.0f} | {own['images_per_second']:,.0f} | "
            f"{ref['process_seconds']:.1f} | {own['process_seconds']:.1f} | "
            f"{ref['peak_mib']:,.0f} | {own['peak_mib']:,.0f} | "
            f"{ref['test_accuracy']:.4f} | {own['test_accuracy']:.4f} |")
    if fast:
        lines.append("")
        lines.append(f"Time to 98.4% test accuracy, deeper CNN (`{fast['command']}`): "
                     + (f"{fast['train_seconds_to_target']:.1f} s of training, "
                        f"{fast['epochs']} epoch(s), final test accuracy "
                        f"{fast['test_accuracy']:.4f}, process {fast['process_seconds']:.1f} s"
                        if fast["reached"] else "not reached"))
    return "\n".join(lines)


def _mean_of(runs: list[dict]) -> dict:
    mean = dict(runs[0])
    for key in ("seconds_per_epoch", "images_per_second", "process_seconds", "peak_mib",
                "test_accuracy"):
        mean[key] = statistics.mean(run[key] for run in runs)
    return mean


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="which models (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (default: the tutorial's)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating rounds of both ways per model (default: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="logreg and deeper for 2 epochs, no time-to-accuracy run (~1 min)")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--table-from", type=Path, default=None, metavar="FILE",
                        help="print the table of a run saved with --json, without training")
    parser.add_argument("--run-reference", help=argparse.SUPPRESS)
    parser.add_argument("--reference-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_reference:
        run_reference(args.run_reference, args.epochs, args.data, args.reference_output)
        return 0
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        print(f"{saved['device']}; {json.dumps(saved['versions'])}\n")
        print(markdown([with_rates(run) for run in saved["runs"]], saved["time_to_accuracy"]))
        return 0
    if args.quick:
        args.models, args.epochs = ["logreg", "deeper"], args.epochs or 2

    results = []
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for name in args.models:
                epochs = args.epochs or MODELS[name][1]["epochs"]
                ways = ("tutorial", "ours") if round_number % 2 == 0 else ("ours", "tutorial")
                for way in ways:
                    results.append(measure(name, way, epochs, args.data, Path(folder)))
                    print(f"{name:10s} {way:8s} {results[-1]['seconds_per_epoch']:7.2f} s/epoch"
                          f"  test accuracy {results[-1]['test_accuracy']:.4f}", flush=True)
        fast = None if args.quick else time_to_accuracy(args.data, Path(folder))

    from mnistkit import runtime

    runtime.load_backend_quietly()
    table = markdown(results, fast)
    print(f"\n{runtime.device()}; {json.dumps(runtime.versions())}\n\n{table}")
    if args.json:
        args.json.write_text(json.dumps({"device": runtime.device(), "versions": runtime.versions(),
                                         "runs": results, "time_to_accuracy": fast,
                                         "table": table}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
