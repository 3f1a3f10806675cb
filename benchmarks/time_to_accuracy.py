"""Time to a good model: the presets made for it, over several seeds, against the ways before.

    fast     train_cnn.py --arch fast     target 99.0% with every seed
    modern   train_cnn.py --arch modern   target 99.6% with every seed

Each run is a whole `train_cnn.py` process with the preset's defaults and a seed; the test
set is scored once, at the end (no stopping on it). Printed per run: test accuracy, errors,
seconds of training, and the FLOP/s of that training against this CPU's measured float32
limit (benchmarks/arithmetic.py). With --before, the same run also measures the ways these
accuracies were reached before, so that the gain is a ratio within one run on one machine:
for fast, the fast preset until 2026-12-04 (Conv(20, 5x5) and Conv(40) each with batch
normalisation, batch 128, float32; 0.9916 in 9.6-12.6 s of training), trained by today's
train_cnn.py for each seed; for modern, the 30-epoch recipe of record (0.9961/0.9956/
0.9955/0.9967 for seeds 1-4: distortions as Keras layers inside the model, Keras' own batch
normalisation), timed for 2 epochs before the seeds and 2 after them: 30 epochs cost its
first epoch plus 29 times its second, the mean of the two estimates.

    python benchmarks/time_to_accuracy.py --before                  # fast, 4 seeds, ~2 min
    python benchmarks/time_to_accuracy.py --presets modern --before # 4 seeds, ~80 min
    python benchmarks/time_to_accuracy.py --quick                   # one short run, ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arithmetic import peak_dtype  # noqa: E402  (light: no Keras)

# preset: (command, target with the default seed, target with the other seeds)
PRESETS = {"fast": (["train_cnn.py", "--arch", "fast"], 0.99, 0.99),
           "modern": (["train_cnn.py", "--arch", "modern"], 0.996, 0.996)}
DEFAULT_SEED = 1
# The fast preset's settings until 2026-12-04, its model in previous_fast_model().
PREVIOUS_FAST = ["--arch", "fast", "--batch-size", "128", "--learning-rate", "0.01",
                 "--precision", "float32"]
PREVIOUS_FAST_LABEL = "before: the fast preset until 2026-12-04"
# The modern CNN's recipe of record, 2026-12-02 (README): its epochs and, for the default
# seed, its test accuracy and errors, which a 2-epoch timing cannot measure.
RECORD_EPOCHS, RECORD_ACCURACY, RECORD_ERRORS = 30, 0.9961, 39
RECORD_LABEL = "before: modern, the 30-epoch recipe of record"


def previous_fast_model(config):
    """The fast preset's model until 2026-12-04: 17,950 parameters."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(20, 5, use_bias=False), layers.MaxPooling2D(2),
        layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(40, 3, use_bias=False), layers.MaxPooling2D(2),
        layers.BatchNormalization(), layers.ReLU(),
        layers.Flatten(), layers.Dense(10, activation="softmax")], name="cnn_fast")


def train_previous_fast(argv: list[str]) -> int:
    """train_cnn.py as it is, with the previous fast model: the same pipeline and loop."""
    import train_cnn

    train_cnn.build_model = previous_fast_model
    return train_cnn.main(argv)


def record_recipe_model():
    """The modern CNN as it was trained for 30 epochs: distortions as layers of the model."""
    import keras
    from keras import layers

    def conv(filters, **options):
        return [layers.Conv2D(filters, 3, use_bias=False, **options),
                layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.RandomRotation(0.03, fill_mode="constant"),
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
        layers.RandomZoom(0.1, fill_mode="constant"),
        *conv(32, padding="same"), layers.MaxPooling2D(2),
        *conv(64, padding="same"), *conv(64, padding="same"), layers.MaxPooling2D(2),
        *conv(128), layers.Flatten(), layers.Dropout(0.25),
        layers.Dense(10, activation="softmax")], name="cnn_modern_of_record")


def time_record_recipe(data: str | None, output: Path) -> None:
    """Two epochs of the recipe of record, trained as train_cnn.py trained it then (same
    pipeline, steps per call and schedule over 30 epochs); writes their seconds as JSON."""
    from arithmetic import training_flops_per_image

    from mnistkit import backend, runtime
    from mnistkit.files.data import load_mnist
    from mnistkit.prepare import batches
    from mnistkit.train.callbacks import EpochTimer
    from mnistkit.train.compiling import STEPS_PER_EXECUTION, build_optimizer
    from mnistkit.train.config import TrainingConfig

    backend.load_backend_quietly()
    runtime.seed_everything(DEFAULT_SEED)
    mnist = load_mnist(data)
    model = record_recipe_model()
    x_train, y_train, _ = batches.split(model, mnist, 0.0)
    recipe = TrainingConfig(name="cnn", output="", optimizer="adamw", learning_rate=0.003,
                            schedule="onecycle")
    steps = RECORD_EPOCHS * -(-len(x_train) // 128)
    model.compile(optimizer=build_optimizer(recipe, steps),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=STEPS_PER_EXECUTION)
    shuffled = batches.ShuffledBatches(x_train, y_train, 128, DEFAULT_SEED)
    timer = EpochTimer()
    model.fit(**shuffled.fit_arguments(), epochs=2, verbose=0,
              callbacks=[shuffled.callback(), timer])
    output.write_text(json.dumps({"epoch_seconds": timer.seconds, "train_images": len(x_train),
                                  "flops_per_image": training_flops_per_image(model)}))


def record_recipe_seconds(data: str | None, output: Path) -> dict:
    """The recipe of record's estimated 30 epochs, from a 2-epoch process of its own."""
    argv = [sys.executable, __file__, "--time-record-recipe", str(output)]
    if data:
        argv += ["--data", data]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed:\n{result.stderr}")
    timed = json.loads(output.read_text())
    first, second = timed["epoch_seconds"]
    timed["estimate"] = first + (RECORD_EPOCHS - 1) * second
    return timed


def train(argv: list[str], output: Path, data: str | None) -> dict:
    """Run a training process; its JSON record."""
    argv = [sys.executable, *argv, "--quiet", "--no-plot", "--output", str(output)]
    if data:
        argv += ["--data", data]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed:\n{result.stderr}")
    return json.loads(output.with_suffix(".json").read_text())


def row(label: str, seed: int, record: dict, target: float,
        train_seconds: float | None = None, note: str = "") -> dict:
    """One run's line of the table."""
    epochs = record["epochs_run"]
    flops = record["flops_per_image"] * record["train_images"] * epochs
    accuracy = record["test"]["accuracy"]
    return {"preset": label, "seed": seed, "accuracy": accuracy,
            "errors": record["test"]["errors"],
            "train_seconds": record["train_seconds"] if train_seconds is None else train_seconds,
            "epochs": epochs, "gflops_per_second": flops / record["train_seconds"] / 1e9,
            "target": target, "met": accuracy >= target, "note": note,
            "precision": peak_dtype(record.get("placement", {}).get("precision", ""))}


def record_rows(timings: list[dict], rows: list[dict]) -> list[dict]:
    """The recipe of record's row: its accuracy of record (seed 1), its 30 epochs' seconds as
    estimated in this run (mean of the estimates), and each modern seed's share of that."""
    estimate = statistics.mean(t["estimate"] for t in timings)
    for r in rows:
        if r["preset"] == "modern":
            r["note"] = f"{r['train_seconds'] / estimate:.2f} of the recipe of record"
    flops = timings[0]["flops_per_image"] * timings[0]["train_images"] * RECORD_EPOCHS
    shown = " and ".join(f"{t['estimate']:.1f}" for t in timings)
    return [{"preset": RECORD_LABEL, "seed": DEFAULT_SEED,
             "accuracy": RECORD_ACCURACY, "errors": RECORD_ERRORS, "train_seconds": estimate,
             "epochs": RECORD_EPOCHS, "gflops_per_second": flops / estimate / 1e9,
             "target": 0.996, "met": True,
             "note": f"accuracy of record; seconds estimated here, {shown} s"}]


def markdown(rows: list[dict], peaks: dict[str, float]) -> str:
    shown = ", ".join(f"{dtype} {value:.1f}" for dtype, value in peaks.items())
    lines = [f"Peak: matrix multiply on this CPU, GFLOP/s: {shown}; each share is of the peak "
             "of the precision the run computed in.", "",
             "| run | seed | test accuracy | errors | epochs | precision | training s | "
             "GFLOP/s | share of peak | target | met |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        precision = r.get("precision", "float32")
        lines.append(
            f"| {r['preset']}{' (' + r['note'] + ')' if r['note'] else ''} | {r['seed']} | "
            f"{r['accuracy']:.4f} | {r['errors']} | {r['epochs']} | {precision} | "
            f"{r['train_seconds']:.1f} | {r['gflops_per_second']:.1f} | "
            f"{r['gflops_per_second'] / peaks[precision]:.0%} | "
            f"{r['target']} | {'yes' if r['met'] else '**no**'} |")
    for name in dict.fromkeys(r["preset"] for r in rows):
        runs = [r for r in rows if r["preset"] == name]
        if len(runs) > 1:
            seconds = [r["train_seconds"] for r in runs]
            lines.append(f"\n{name}: {sum(r['met'] for r in runs)} of {len(runs)} seeds "
                         f"met the target; training {min(seconds):.1f}-{max(seconds):.1f} s "
                         f"(mean {statistics.mean(seconds):.1f} s); test accuracy "
                         f"{min(r['accuracy'] for r in runs):.4f}-"
                         f"{max(r['accuracy'] for r in runs):.4f}")
    fast = [r["train_seconds"] for r in rows if r["preset"] == "fast"]
    previous = [r["train_seconds"] for r in rows if r["preset"] == PREVIOUS_FAST_LABEL]
    if fast and previous:
        lines.append(f"\nfast against the previous fast preset in this run: "
                     f"{statistics.mean(fast):.1f} / {statistics.mean(previous):.1f} s = "
                     f"{statistics.mean(fast) / statistics.mean(previous):.2f} (means), "
                     f"{max(fast) / min(previous):.2f} (slowest against quickest)")
    record = [r for r in rows if r["preset"] == RECORD_LABEL]
    modern = [r["train_seconds"] for r in rows if r["preset"] == "modern"]
    if record and modern:
        lines.append(f"\nmodern against the recipe of record in this run: "
                     f"{statistics.mean(modern):.1f} / {record[0]['train_seconds']:.1f} s = "
                     f"{statistics.mean(modern) / record[0]['train_seconds']:.2f} (mean), "
                     f"{max(modern) / record[0]['train_seconds']:.2f} (slowest seed)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=["fast"],
                        help="which presets (default: fast; modern takes tens of minutes a seed)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4],
                        help="seeds to train each preset with (default: 1 2 3 4)")
    parser.add_argument("--before", action="store_true",
                        help="also measure the ways before, for the ratio (default: off)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed of the fast preset for one epoch, to try the script")
    parser.add_argument("--data", default=None, help="local MNIST (default: $MNIST_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--time-record-recipe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--train-previous-fast", nargs=argparse.REMAINDER,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_previous_fast is not None:
        return train_previous_fast(args.train_previous_fast)
    if args.time_record_recipe:
        time_record_recipe(args.data, args.time_record_recipe)
        return 0
    if args.quick:
        args.presets, args.seeds, args.before = ["fast"], [DEFAULT_SEED], False

    from arithmetic import script_flops_per_image

    from mnistkit import backend, runtime

    backend.load_backend_quietly()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        before_modern = []
        for name in args.presets:
            command, first_target, other_target = PRESETS[name]
            if args.before and name == "modern":
                before_modern.append(record_recipe_seconds(args.data, folder / "record1.json"))
            command = [*command, *(["--epochs", "1"] if args.quick else [])]
            flops = script_flops_per_image(command)
            for seed in args.seeds:
                record = train([*command, "--seed", str(seed)], folder / f"{name}{seed}.h5",
                               args.data)
                record["flops_per_image"] = flops
                target = first_target if seed == DEFAULT_SEED else other_target
                rows.append(row(name, seed, record, target))
                print(f"{name} seed {seed}: {rows[-1]['accuracy']:.4f} in "
                      f"{rows[-1]['train_seconds']:.1f} s", flush=True)
            if before_modern and name == "modern":
                before_modern.append(record_recipe_seconds(args.data, folder / "record2.json"))
                rows += record_rows(before_modern, rows)
        if args.before and "fast" in args.presets:
            import keras
            from arithmetic import training_flops_per_image

            flops = training_flops_per_image(previous_fast_model(None))
            keras.backend.clear_session()
            for seed in args.seeds:
                record = train([__file__, "--train-previous-fast", *PREVIOUS_FAST,
                                "--seed", str(seed)], folder / f"previous{seed}.h5", args.data)
                record["flops_per_image"] = flops
                rows.append(row(PREVIOUS_FAST_LABEL, seed, record, 0.99))
                print(f"previous fast seed {seed}: {rows[-1]['accuracy']:.4f} in "
                      f"{rows[-1]['train_seconds']:.1f} s", flush=True)
    from arithmetic import peaks_gflops

    peak = peaks_gflops()
    table = markdown(rows, peak)
    print(f"\n{runtime.device()}; {json.dumps(runtime.versions())}\n\n{table}")
    if args.json:
        args.json.write_text(json.dumps({"device": runtime.device(), "peak_gflops": peak,
                                         "versions": runtime.versions(), "rows": rows,
                                         "table": table}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
