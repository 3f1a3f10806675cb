"""Real pictures of digits, read as predict.py reads them: accuracy per kind, every miss.

    python benchmarks/pictures.py /tmp/real_pictures                     # the tuning part
    python benchmarks/pictures.py /tmp/real_pictures --part held --model models/cnn.h5

The pictures are people's own, published in public repositories (drawings in paint
programs and on canvases, phone photos, scans); benchmarks/pictures_manifest.json says
where each came from, its digit and how that was established, its kind, and whether it is
in the tuning part or in the part held aside. The pictures are not in this repository:
FOLDER holds them as the manifest names them (``file``).

Each picture goes through the preparation predict.py uses (mnistkit.prepare.pictures) and
the model; it is read right when the reading is its one digit. Printed: per kind, right of
all with a 95% Wilson interval, and how many single digits came back as several (the
splitter cut one digit) or as none; the targets (drawings >= 98%, photos >= 95%, no digit
read as several), met or not; every miss with the file, its digit and the reading. Each
miss's 28x28 inputs, as the model saw them, go to OUTPUT/misses/ as PNG (4x, side by side
when the picture was read as several digits), and the figures to OUTPUT/pictures.json
(OUTPUT: --output, by default FOLDER/benchmark_PART/).
"""

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MANIFEST = ROOT / "benchmarks" / "pictures_manifest.json"
KINDS = ("drawing", "photo", "scan")
TARGETS = {"drawing": 0.98, "photo": 0.95}  # the share each kind must read right
ZOOM = 4  # the miss pictures: each 28x28 input 4 times larger


@dataclass
class Reading:
    """One picture: its manifest entry, the digits the model read, and the inputs it saw."""

    entry: dict
    reading: str = ""
    inputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8))
    error: str = ""

    @property
    def right(self) -> bool:
        return self.reading == str(self.entry["label"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mnistkit.cli import add_pixels_flag

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="where the manifest's pictures are")
    parser.add_argument("--model", type=Path, default=None,
                        help="model file (default: the most accurate in models/)")
    parser.add_argument("--part", choices=("tune", "held", "all"), default="tune",
                        help="the tuning part, the part held aside, or both (default: tune)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST,
                        help=f"the pictures' manifest (default: {MANIFEST.relative_to(ROOT)})")
    parser.add_argument("--output", type=Path, default=None,
                        help="where the misses' inputs and pictures.json go (default: "
                             "FOLDER/benchmark_PART/, beside the pictures, out of the repository)")
    parser.add_argument("--data", default=None,
                        help="local MNIST for --pixels auto (default: $MNIST_DATA)")
    add_pixels_flag(parser)
    return parser.parse_args(argv)


def chosen_entries(manifest: Path, part: str) -> list[dict]:
    """The manifest's pictures of ``part`` (all of them for "all")."""
    entries = json.loads(manifest.read_text())["pictures"]
    return [entry for entry in entries if part == "all" or entry["part"] == part]


def prepare_all(folder: Path, entries: list[dict]) -> list[Reading]:
    """Each picture's 28x28 inputs, prepared as predict.py prepares them."""
    from mnistkit.prepare.pictures import ImageError, picture_digits

    readings = []
    for entry in entries:
        reading = Reading(entry)
        try:
            reading.inputs = picture_digits(folder / entry["file"])
        except ImageError as error:
            reading.error = str(error)
        readings.append(reading)
    return readings


def read_all(model: Path, readings: list[Reading], pixels: str, data: str | None) -> None:
    """The model's reading of every picture's inputs (in a worker, as predict.py runs it)."""
    from mnistkit.prepare.pixels import mnist_for_pixels
    from mnistkit.score.hosting import ModelHost

    mnist, pixels = mnist_for_pixels(pixels, data)
    host = ModelHost([model], pixels=pixels, mnist=mnist)
    host.start()
    try:
        if host.models[0].error:
            raise SystemExit(f"error: {model}: {host.models[0].error}")
        inputs = [reading.inputs for reading in readings if len(reading.inputs)]
        answers = host.predict(str(model), np.concatenate(inputs)).argmax(axis=1)
    finally:
        host.close()
    start = 0
    for reading in readings:
        count = len(reading.inputs)
        reading.reading = "".join(str(int(d)) for d in answers[start:start + count])
        start += count


def summary(readings: list[Reading]) -> dict:
    """Per kind (and all together): right, total, share, its interval, several, none."""
    from mnistkit.score.statistics import wilson_interval

    groups = defaultdict(list)
    for reading in readings:
        groups[reading.entry["kind"]].append(reading)
    groups["all"] = readings
    figures = {}
    for kind, members in groups.items():
        right = sum(reading.right for reading in members)
        low, high = wilson_interval(right, len(members))
        figures[kind] = {"right": right, "total": len(members),
                         "accuracy": right / len(members), "interval": [low, high],
                         "several": sum(len(reading.reading) > 1 for reading in members),
                         "none": sum(not reading.reading for reading in members)}
    return figures


def targets(figures: dict) -> list[tuple[str, bool]]:
    """Each target in words, and whether it is met."""
    met = [(f"{kind}s >= {share:.0%}", figures[kind]["accuracy"] >= share)
           for kind, share in TARGETS.items() if kind in figures]
    met.append(("no single digit read as several", figures["all"]["several"] == 0))
    return met


def miss_picture(reading: Reading, path: Path) -> None:
    """The inputs the model saw, side by side and enlarged, white on black as MNIST."""
    from PIL import Image

    inputs = reading.inputs if len(reading.inputs) else np.zeros((1, 28, 28), np.uint8)
    strip = np.concatenate([np.pad(image, ((0, 0), (0, 2)), constant_values=96)
                            for image in inputs], axis=1)[:, :-2]
    Image.fromarray(strip).resize((strip.shape[1] * ZOOM, strip.shape[0] * ZOOM),
                                  Image.Resampling.NEAREST).save(path)


def write_outputs(readings: list[Reading], figures: dict, output: Path,
                  args: argparse.Namespace) -> list[dict]:
    """The misses' pictures and pictures.json; the misses, as listed."""
    from mnistkit.files.saving import write_json

    folder = output / "misses"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()  # a miss of an earlier run that this one read right
    misses = []
    for number, reading in enumerate(r for r in readings if not r.right):
        name = f"{number:03d}_{reading.entry['label']}_as_{reading.reading or 'none'}_" \
               f"{Path(reading.entry['file']).name}"
        picture = folder / (Path(name).stem[:120] + ".png")
        miss_picture(reading, picture)
        misses.append({"file": reading.entry["file"], "kind": reading.entry["kind"],
                       "label": reading.entry["label"], "reading": reading.reading,
                       "error": reading.error, "input": str(picture)})
    write_json({"model": str(args.model), "part": args.part, "figures": figures,
                "targets": dict(targets(figures)), "misses": misses},
               output / "pictures.json")
    return misses


def report(figures: dict, misses: list[dict], model: Path, part: str) -> str:
    lines = [f"real pictures, {part} part, model {model}:"]
    for kind in (*KINDS, "all"):
        if kind not in figures:
            continue
        f = figures[kind]
        lines.append(f"  {kind:8} {f['right']:4}/{f['total']:<4} {f['accuracy']:7.2%}  "
                     f"(95% {f['interval'][0]:.1%}-{f['interval'][1]:.1%})  "
                     f"several digits: {f['several']}  none: {f['none']}")
    lines.append("targets: " + "; ".join(f"{what}: {'met' if ok else 'NOT met'}"
                                          for what, ok in targets(figures)))
    lines.append(f"misses ({len(misses)}):")
    lines += [f"  {m['file']}: {m['label']} read as {m['reading'] or m['error'] or 'nothing'}"
              f" ({m['kind']}) -> {m['input']}" for m in misses]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mnistkit.read.finding import best_model

    args.model = args.model or best_model()
    args.output = args.output or args.folder / f"benchmark_{args.part}"
    entries = chosen_entries(args.manifest, args.part)
    missing = [entry["file"] for entry in entries if not (args.folder / entry["file"]).is_file()]
    if missing:
        print(f"error: {len(missing)} of the manifest's pictures are not in {args.folder} "
              f"(first: {missing[0]})", file=sys.stderr)
        return 2
    readings = prepare_all(args.folder, entries)
    read_all(args.model, readings, args.pixels, args.data)
    figures = summary(readings)
    misses = write_outputs(readings, figures, args.output, args)
    print(report(figures, misses, args.model, args.part))
    return 0


if __name__ == "__main__":
    sys.exit(main())
