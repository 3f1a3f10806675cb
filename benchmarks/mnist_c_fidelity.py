"""How close the regenerated MNIST-C is to the published code's, corruption by corruption, on
the first 1,000 test images.

    # 1. once: the published code, run where the libraries of 2019 are (below), two seeds
    python benchmarks/mnist_c_fidelity.py reference --published mnist-c/ --out ref.npz
    # 2. the comparison, with the project's environment
    python benchmarks/mnist_c_fidelity.py compare ref.npz [--files mnist_c/]

Both read the test images from $MNIST_DATA, a folder holding t10k-images-idx3-ubyte.gz.

The published code (github.com/google-research/mnist-c, corruptions.py) is run, not copied:
step 1 imports it from its checkout. It needs Python 3.7 with numpy 1.16.4, scipy 1.3.0,
scikit-image 0.15.0, Pillow<7, Wand 0.5.9 and opencv-python-headless 4.1.2.30, and
ImageMagick 6 (Debian: libmagickwand-6.q16-6). Step 1 seeds NumPy's global generator with
each seed before each corruption and corrupts the images one by one, as that code does.

Step 2 prints, for each corruption, the figure compared:
- *same draws*: the project's function fed, through a stand-in generator, the very random
  draws the published code made for seed 0 (the legacy generator's stream is fixed), so the
  pixels must agree: the share of pixels that differ, and the largest difference in levels;
- *distribution*: a per-image statistic (named in the table) averaged over the images, for
  the published code's two seeds and the project's two seeds; "within" when the project's
  mean is no further from the published mean than the two published seeds are from each
  other, or than twice the standard error of that difference.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

import numpy as np

COUNT = 1000
SEEDS = (0, 1)
ROOT = Path(__file__).resolve().parent.parent


def first_test_images(count: int) -> np.ndarray:
    """The first ``count`` MNIST test images, uint8 (n, 28, 28), from $MNIST_DATA's IDX file
    (read directly: step 1 runs under an old Python that cannot import the project)."""
    folder = Path(os.environ.get("MNIST_DATA", ROOT / "data"))
    with gzip.open(str(folder / "t10k-images-idx3-ubyte.gz")) as stream:
        data = np.frombuffer(stream.read(), np.uint8, offset=16)
    return data.reshape(-1, 28, 28)[:count]


def reference(published: Path, out: Path, count: int) -> None:
    """Step 1: the published corruptions of the first ``count`` images for each seed."""
    from PIL import Image

    os.chdir(str(published))  # it opens its noise matrix from the working folder
    sys.path.insert(0, str(published))
    import corruptions as paper

    images = first_test_images(count)
    sets = {}
    for seed in SEEDS:
        for name in paper.CORRUPTIONS[1:]:
            np.random.seed(seed)
            made = [np.array(getattr(paper, name)(Image.fromarray(image, "L")))
                    for image in images]
            sets[f"{name}/{seed}"] = np.round(np.stack(made)).astype(np.uint8)
            print(seed, name, flush=True)
    np.savez_compressed(str(out), **sets)


class Replay:
    """A stand-in for the project's Generator that hands out the draws the published code
    made after np.random.seed(seed), in the published order and meaning, in the shapes
    the project's functions ask for. Glass blur is replayed one image at a time."""

    def __init__(self, name: str, seed: int):
        self.name, self.state, self.queue = name, np.random.RandomState(seed), []

    def random(self, shape):
        if self.name == "glass_blur":  # choice([True, False]): index 0 swaps
            return np.array([0.0 if self.state.randint(0, 2, 1)[0] == 0 else 1.0])
        if not self.queue:  # impulse noise: per image, which pixels flip, then which salt
            draws = self.state.random_sample((shape[0], 2) + tuple(shape[1:]))
            self.queue = [draws[:, 0], draws[:, 1]]
        return self.queue.pop(0)

    def integers(self, low, high, shape):
        if self.name == "glass_blur":
            return self.state.randint(low, high, (2, 1)) if shape[1] else np.zeros((2, 0), int)
        if self.name == "dotted_line":
            return np.stack([self.state.randint(0, 27, size=2) for _ in range(shape[0])])
        if not self.queue:  # zigzag: per image its start row, then its tilt
            pairs = [(self.state.randint(0, 27), self.state.randint(-5, 5))
                     for _ in range(shape)]
            self.queue = [np.array(column) for column in zip(*pairs, strict=True)]
        return self.queue.pop(0)

    def choice(self, values, shape):
        if self.name == "translate":  # the published bits move the image the other way
            bits = np.stack([self.state.choice([-1, 1], 2) for _ in range(shape[0])])
            return -3 * bits[:, ::-1]
        return np.array([values[self.state.choice(2, 1)[0]] for _ in range(shape)])

    def uniform(self, low, high, size):
        return self.state.uniform(low, high, size)

    def poisson(self, lam):
        return self.state.poisson(lam)

    def normal(self, loc, scale, shape):
        return self.state.normal(loc, scale, shape)


REPLAYED = ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale",
            "rotate", "brightness", "translate", "stripe", "spatter", "dotted_line", "zigzag",
            "canny_edges")  # fog's plasma is drawn batch-wise in float32: distribution only


def project(name: str, images: np.ndarray, rng) -> np.ndarray:
    """The project's corruption ``name`` of ``images`` with ``rng``, as uint8."""
    from mnistkit.prepare.corruptions import CORRUPTIONS

    x = images.astype(np.float64) / 255
    if name == "glass_blur" and isinstance(rng, Replay):
        made = np.concatenate([CORRUPTIONS[name](x[i:i + 1], rng) for i in range(len(x))])
    else:
        made = CORRUPTIONS[name](x, rng)
    return np.round((np.clip(made, 0, 1) * 255).astype(np.float32)).astype(np.uint8)


def statistic(name: str, clean: np.ndarray, made: np.ndarray) -> tuple[str, np.ndarray]:
    """The per-image figure compared for ``name``: what that corruption changes."""
    clean, made = clean.astype(float), made.astype(float)
    if name == "glass_blur":
        across = np.abs(np.diff(made, axis=2)).mean(axis=(1, 2))
        down = np.abs(np.diff(made, axis=1)).mean(axis=(1, 2))
        return "mean |d/dx| : |d/dy|", across / down
    if name in ("shot_noise", "impulse_noise"):
        return "share of pixels changed", (made != clean).mean(axis=(1, 2))
    if name == "motion_blur":
        return "brightest pixel", made.max(axis=(1, 2))
    if name in ("dotted_line", "zigzag"):
        return "ink added (pixels)", (made - clean).sum(axis=(1, 2)) / 255
    if name == "fog":
        background = clean == 0
        return "background level", (made * background).sum(axis=(1, 2)) / background.sum(
            axis=(1, 2))
    if name == "spatter":
        return "share of background muddied", ((made > 0) & (clean == 0)).mean(axis=(1, 2))
    return "mean level", made.mean(axis=(1, 2))


def compare(reference_file: Path, files: Path | None) -> None:
    """Step 2: the table; with ``files`` (the published archive's mnist_c folder) a last
    column of the same figure on the published images themselves."""
    sys.path.insert(0, str(ROOT))
    from mnistkit.files.data import load_mnist
    from mnistkit.prepare.corruptions import CORRUPTIONS, SEED
    from mnistkit.prepare.published_mnist_c import published_sets

    published = np.load(str(reference_file))
    images = first_test_images(len(published["shot_noise/0"]))
    archive = published_sets(files, load_mnist().test_labels) if files else {}
    print(f"{len(images)} test images; published seeds {SEEDS}, project seeds "
          f"({SEED}, {SEED + 1})\n")
    print("| corruption | same draws: pixels differing, max | figure | published s0 / s1 |"
          " project s0 / s1 | gap / allowed | |" + " published files |" * bool(files))
    print("| --- | ---: | --- | ---: | ---: | ---: | --- |" + " ---: |" * bool(files))
    for index, name in enumerate(CORRUPTIONS):
        theirs = [published[f"{name}/{seed}"] for seed in SEEDS]
        same = "–"
        if name in REPLAYED:
            diff = np.abs(project(name, images, Replay(name, SEEDS[0])).astype(int) - theirs[0])
            same = f"{np.count_nonzero(diff):,} of {diff.size:,}, {diff.max()}"
        ours = [project(name, images, np.random.default_rng([seed, index]))
                for seed in (SEED, SEED + 1)]
        label, _ = statistic(name, images, theirs[0])
        a, b = (statistic(name, images, made)[1] for made in theirs)
        c, d = (statistic(name, images, made)[1] for made in ours)
        gap = abs((c.mean() + d.mean()) / 2 - (a.mean() + b.mean()) / 2)
        error = np.sqrt((a.var() + b.var() + c.var() + d.var()) / (4 * len(images)))
        allowed = max(abs(a.mean() - b.mean()), 2 * error)
        print(f"| {name} | {same} | {label} | {a.mean():.4f} / {b.mean():.4f} | "
              f"{c.mean():.4f} / {d.mean():.4f} | {gap:.4f} / {allowed:.4f} | "
              f"{'within' if gap <= allowed else 'OUTSIDE'} |" + (
                  f" {statistic(name, images, archive[name][:len(images)])[1].mean():.4f} |"
                  if archive else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("reference", help="run the published code (old Python)")
    make.add_argument("--published", type=Path, required=True, help="its checkout")
    make.add_argument("--out", type=Path, required=True, help="the .npz to write")
    make.add_argument("--count", type=int, default=COUNT)
    check = steps.add_parser("compare", help="compare the project's corruptions with it")
    check.add_argument("reference", type=Path, help="the .npz step 1 wrote")
    check.add_argument("--files", type=Path, default=None,
                       help="also measure the published archive's mnist_c folder")
    args = parser.parse_args()
    if args.step == "reference":
        reference(args.published.resolve(), args.out.resolve(), args.count)
    else:
        compare(args.reference, args.files)


if __name__ == "__main__":
    main()
