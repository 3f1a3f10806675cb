"""Command-line pieces every script shares: number types with bounds, and ``--pixels``.
The training scripts' own flags are in ``mnistkit.train.flags``.

Nothing here imports TensorFlow or Keras, so ``--help`` and refused flags answer at once.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import sys


class Parser(argparse.ArgumentParser):
    """argparse with its refusals in one line: ``error: <what>`` (and ``did you mean
    --model?`` for a flag, or a choice, close to a real one), without the usage block that
    would bury it; ``--help`` still prints everything."""

    def error(self, message: str) -> None:  # argparse's name; it never returns
        print(f"error: {message}{self.suggestion(message)}", file=sys.stderr)
        raise SystemExit(2)

    def suggestion(self, message: str) -> str:
        """`` (did you mean X?)`` for the first unknown flag or invalid choice in argparse's
        ``message`` that is close to a known one, else ``''``."""
        if message.startswith("unrecognized arguments: "):
            flags = [option for action in self._actions for option in action.option_strings]
            for word in message.removeprefix("unrecognized arguments: ").split():
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.split("=")[0], flags, n=1,
                                                      cutoff=0.6)
                    if close:
                        return f" (did you mean {close[0]}?)"
            return " (--help lists the flags)"
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            known = [name.strip(" '") for name in choice.group(2).split(",")]
            close = difflib.get_close_matches(choice.group(1), known, n=1, cutoff=0.6)
            if close:
                return f" (did you mean {close[0]}?)"
        return ""


def whole_number(low: int, high: int):
    """An argparse type: a whole number in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:,}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {value}")
        return value
    return parse


def absent(path: str | os.PathLike) -> bool:
    """Whether nothing at all is at ``path``: a typo, said before anything loads. A link that
    leads nowhere, or a name the file system cannot hold, is not absent: the reader's own
    error says what it is."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


# Bounds beyond which a value is a typo, not a wish: they keep the backends from aborting.
positive_int = whole_number(1, 1_000_000)


def add_pixels_flag(parser: argparse.ArgumentParser) -> None:
    """``--pixels``: the pixel scale fed to models (mnistkit.prepare.pixels), or auto."""
    from mnistkit.prepare import pixels

    scales = ", ".join(f"{scale} ({meaning})" for scale, meaning in pixels.MEANINGS.items())
    parser.add_argument("--pixels", choices=pixels.CHOICES, default="auto",
                        help=f"pixel scale fed to the models: {scales}; auto picks, per model, "
                             f"the one that classifies {pixels.AUTO_IMAGES:,} training images "
                             "best (default: auto)")


def positive_float(text: str) -> float:
    """A finite number above 0."""
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def positive_float_at_most(high: float):
    """An argparse type: a finite number above 0 and at most ``high``."""
    def parse(text: str) -> float:
        value = positive_float(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,g}, got {text}")
        return value
    return parse


def gigabytes_of_memory(text: str) -> float:
    """A worker's memory budget: 1 to 4,096 GB beyond what its backend maps itself (below
    1 GB, loading an ordinary model fails in ways that look like a damaged file)."""
    value = positive_float_at_most(4096)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (GB), got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def accuracy(text: str) -> float:
    """A number in (0, 1]."""
    value = _finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value
