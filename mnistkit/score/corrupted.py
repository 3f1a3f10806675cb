"""evaluate.py --corruptions: MNIST with its 15 corrupted test sets, built the first time
(most of a minute on 2 cores, said as it goes) and cached, or the published set."""

from __future__ import annotations

import dataclasses
import sys
import time

from mnistkit.files.data import DataError, Mnist
from mnistkit.prepare.corruptions import CORRUPTIONS


def with_corruptions(mnist: Mnist, source: bool | str = True) -> Mnist:
    """MNIST with the path of its 15 corrupted test sets, built the first time and cached
    (or the published ones, when ``source`` names them): the workers read them from there
    rather than through their pipe."""
    from mnistkit.prepare.corruption_cache import cached_corruptions
    from mnistkit.prepare.corruptions import VERSION as CORRUPTIONS_VERSION

    if isinstance(source, str):
        from mnistkit.prepare.published_mnist_c import published_mnist

        published = published_mnist(mnist, source)
        print(f"corruptions: MNIST-C as published, read from {published.corrupted}")
        return published
    started = time.perf_counter()
    try:
        path, built = cached_corruptions(mnist.test_images, building_progress)
    except OSError as error:  # the cache folder unwritable, or a full disk
        raise DataError(f"--corruptions: could not build the corrupted test sets: "
                        f"{error}") from None
    if built:
        print(f"built the {len(CORRUPTIONS)} corrupted test sets in "
              f"{time.perf_counter() - started:.0f} s, cached in {path}")
    print(f"corruptions: MNIST-C regenerated here (version {CORRUPTIONS_VERSION}; "
          "--corruptions PATH scores the published set)")
    return dataclasses.replace(mnist, corrupted=str(path))


def building_progress(built: int, name: str | None) -> None:
    """While --corruptions builds its sets (most of a minute, once): a line as it starts
    and, on a terminal, a counter naming the corruption under way."""
    total = len(CORRUPTIONS)
    if built == 0:
        print(f"building the {total} corrupted test sets of MNIST-C (once: then cached)",
              flush=True)
    if sys.stderr.isatty():
        under_way = f", now {name.replace('_', ' ')}" if name else ""
        print(f"\r  {built} of {total} built{under_way}\033[K", end="" if name else "\n",
              file=sys.stderr, flush=True)
