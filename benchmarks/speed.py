"""Training speed: the tutorials' plain Keras code against this project's scripts.

Each model is trained both ways at the tutorial's settings, as whole processes, once for
1 epoch and once for the tutorial's N epochs, in alternating order, --rounds times. The
seconds an epoch costs are (T[N epochs] - T[1 epoch]) / (N - 1) of those processes'
wall times (means over the rounds): start-up, data loading, tracing, the final test and
saving cancel out, and everything each epoch costs counts (training steps, validation,
checkpoint, callbacks, stalls). Printed as a Markdown table (and written as JSON) with
the speed-up, the training arithmetic per epoch, the FLOP/s it reaches and their share of
this CPU's measured float32 limit (benchmarks/arithmetic.py), peak memory and accuracy.
The tutorials' code runs as it would for its readers, with TensorFlow's own oneDNN default
(off on CPUs without AVX-512 or AMX, where the scripts turn it on); --tutorial-onednn gives
it oneDNN too, to compare the same kernels.

    python benchmarks/speed.py --data ../shared/data/mnist            # 4 models, ~8 min on 2 cores
    python benchmarks/speed.py --models logreg mlp simple deeper large --rounds 2
    python benchmarks/speed.py --quick                                # ~1 minute
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

from arithmetic import peak_dtype  # noqa: E402  (light: no Keras)

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
DEFAULT_MODELS = ["logreg", "mlp", "simple", "deeper"]  # large: 10 epochs of batch 32, long


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


def run_reference(name: str, epochs: int, data: str | None, output: str,
                  onednn: bool = False) -> None:
    """The tutorial's plain code: one-hot labels, model.fit on arrays, model.evaluate, with
    TensorFlow's own oneDNN default (or, with ``onednn``, oneDNN on as the scripts have it)."""
    from mnistkit import backend

    backend.load_backend_quietly(onednn=onednn)
    import keras
    from arithmetic import training_flops_per_image

    from mnistkit.files.data import load_mnist
    from mnistkit.train.callbacks import EpochTimer

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
        "train_images": round(len(x_train) * (1 - settings["validation_split"])),
        "params": model.count_params(), "flops_per_image": training_flops_per_image(model)}))


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


def measure(name: str, way: str, epochs: int, data: str | None, folder: Path,
            tutorial_onednn: bool = False) -> dict:
    """One whole process: ``name`` trained ``way`` for ``epochs``."""
    _, settings, command = MODELS[name]
    result_path = folder / f"{name}_{way}_{epochs}.json"
    if way == "tutorial":
        argv = [sys.executable, __file__, "--run-reference", name, "--epochs", str(epochs),
                "--reference-output", str(result_path),
                *(["--tutorial-onednn"] if tutorial_onednn else [])]
    else:
        argv = [sys.executable, *command, "--quiet", "--epochs", str(epochs),
                "--batch-size", str(settings["batch_size"]), "--optimizer", settings["optimizer"],
                "--validation-split", str(settings["validation_split"]),
                "--output", str(result_path.with_suffix(".h5"))]
    if data:
        argv += ["--data", data]
    process_seconds, peak_mib = timed_process(argv)
    record = json.loads(result_path.read_text())
    return {"model": name, "way": way, "epochs": epochs, "epoch_seconds": record["epoch_seconds"],
            "train_images": record["train_images"], "process_seconds": process_seconds,
            "peak_mib": peak_mib, "test_accuracy": record["test"]["accuracy"],
            "flops_per_image": record.get("flops_per_image"),
            "precision": record.get("placement", {}).get("precision", "float32")}


def per_epoch(runs: list[dict], name: str, way: str) -> dict:
    """(mean T[N] - mean T[1]) / (N - 1) over whole processes, and the rest of the row."""
    chosen = [run for run in runs if run["model"] == name and run["way"] == way]
    longest = max(run["epochs"] for run in chosen)
    one = [run["process_seconds"] for run in chosen if run["epochs"] == 1]
    many = [run for run in chosen if run["epochs"] == longest]
    seconds = (statistics.mean(r["process_seconds"] for r in many) - statistics.mean(one)) \
        / (longest - 1)
    images = many[0]["train_images"]
    return {"epochs": longest, "seconds_per_epoch": seconds,
            "spread": (min(r["process_seconds"] for r in many) - max(one)) / (longest - 1),
            "in_process": statistics.mean(statistics.mean(r["epoch_seconds"][1:]) for r in many),
            "images_per_second": images / seconds,
            "gflop_per_epoch": many[0]["flops_per_image"] * images / 1e9,
            "peak_mib": max(r["peak_mib"] for r in chosen),
            "test_accuracy": statistics.mean(r["test_accuracy"] for r in many),
            "precision": many[0].get("precision", "float32"),
            "rounds": len(many)}


def markdown(runs: list[dict], peaks: dict[str, float], tutorial_onednn: bool = False) -> str:
    """The table; ``peaks``: matrix-multiply GFLOP/s per dtype, the limit each share is of."""
    shown = ", ".join(f"{dtype} {value:.1f}" for dtype, value in peaks.items())
    tutorial = ("oneDNN on, as the scripts have it" if tutorial_onednn
                else "TensorFlow's own oneDNN default")
    lines = [f"Per epoch = (T[N epochs] - T[1 epoch]) / (N - 1) of whole processes; peak: "
             f"matrix multiply on this CPU, GFLOP/s: {shown}; each share is of the peak of "
             f"the precision that run computed in. Tutorial code: {tutorial}.", "",
             "| model | N | tutorial s/epoch | ours s/epoch | speed-up | ours precision | "
             "ours in-process s/epoch | GFLOP per epoch | ours GFLOP/s | share of peak | "
             "tutorial peak MiB | ours peak MiB | tutorial test acc | ours test acc |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | ---: |"]
    for name in dict.fromkeys(run["model"] for run in runs):
        ref, own = per_epoch(runs, name, "tutorial"), per_epoch(runs, name, "ours")
        rate = own["gflop_per_epoch"] / own["in_process"]  # while training, not starting up
        dtype = peak_dtype(own["precision"])
        peak = peaks.get(dtype, peaks["float32"])
        lines.append(
            f"| {name} | {own['epochs']} | {ref['seconds_per_epoch']:.2f} | "
            f"{own['seconds_per_epoch']:.2f} | "
            f"{ref['seconds_per_epoch'] / own['seconds_per_epoch']:.2f}x | {dtype} | "
            f"{own['in_process']:.2f} | {own['gflop_per_epoch']:,.0f} | {rate:.1f} | "
            f"{rate / peak:.0%} | {ref['peak_mib']:,.0f} | {own['peak_mib']:,.0f} | "
            f"{ref['test_accuracy']:.4f} | {own['test_accuracy']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=DEFAULT_MODELS,
                        help=f"which models (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--epochs", type=int, default=None,
                        help="N, the longer run's epochs, at least 2 (default: the tutorial's)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of all four processes per model (default: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="logreg only, N = 2 (about a minute)")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--table-from", type=Path, default=None, metavar="FILE",
                        help="print the table of a run saved with --json, without training")
    parser.add_argument("--tutorial-onednn", action="store_true",
                        help="run the tutorials' code with oneDNN on, as the scripts run "
                             "(default: TensorFlow's own choice for this CPU, as the "
                             "tutorials' code gets it: off on CPUs without AVX-512 or AMX)")
    parser.add_argument("--run-reference", help=argparse.SUPPRESS)
    parser.add_argument("--reference-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_reference:
        run_reference(args.run_reference, args.epochs, args.data, args.reference_output,
                      args.tutorial_onednn)
        return 0
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        print(f"{saved['device']}; {json.dumps(saved['versions'])}\n")
        peaks = saved["peak_gflops"]  # one float32 figure in files written before bfloat16
        print(markdown(saved["runs"], peaks if isinstance(peaks, dict) else {"float32": peaks},
                       saved.get("tutorial_onednn", True)))
        return 0
    if args.quick:
        args.models, args.epochs = ["logreg"], args.epochs or 2
    if args.epochs is not None and args.epochs < 2:
        parser.error("--epochs: at least 2, to subtract the 1-epoch run")

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for name in args.models:
                epochs = args.epochs or MODELS[name][1]["epochs"]
                # alternate which way goes first, and the lengths, so that drifts cancel
                order = [(way, n) for n in (1, epochs) for way in ("tutorial", "ours")]
                for way, n in order if round_number % 2 == 0 else order[::-1]:
                    runs.append(measure(name, way, n, args.data, Path(folder),
                                        args.tutorial_onednn))
                    print(f"{name:10s} {way:8s} {n:2d} epochs {runs[-1]['process_seconds']:7.1f} s"
                          f"  test accuracy {runs[-1]['test_accuracy']:.4f}", flush=True)

    from arithmetic import peaks_gflops, script_flops_per_image

    from mnistkit import backend, runtime

    backend.load_backend_quietly()
    for name in args.models:
        flops = script_flops_per_image(MODELS[name][2])
        for run in runs:
            if run["model"] == name and run["way"] == "ours":
                run["flops_per_image"] = flops
    peaks = peaks_gflops()
    table = markdown(runs, peaks, args.tutorial_onednn)
    print(f"\n{runtime.device()}; {json.dumps(runtime.versions())}\n\n{table}")
    if args.json:
        args.json.write_text(json.dumps({"device": runtime.device(), "versions": runtime.versions(),
                                         "peak_gflops": peaks, "runs": runs, "table": table,
                                         "tutorial_onednn": args.tutorial_onednn},
                                        indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
