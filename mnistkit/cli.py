"""Command-line flags shared by the training scripts.

Nothing here imports TensorFlow or Keras, so ``--help`` and refused flags answer at once.
"""

from __future__ import annotations

import argparse
import math

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam")
SCHEDULES = ("constant", "cosine", "onecycle")
DEFAULT_SEED = 1


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0."""
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
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


def training_parser(name: str, description: str, *, epochs: int = 5, batch_size: int = 128,
                    schedule: str = "constant", archs: dict[str, dict] | None = None,
                    default_arch: str | None = None) -> argparse.ArgumentParser:
    """The parser every ``train_*.py`` script uses.

    ``name`` gives the default output, ``models/<name>.h5``. With ``archs`` (each mapped to
    the settings that differ from ``epochs`` and ``batch_size``) the parser gets ``--arch``;
    the output then defaults to ``models/<name>_<arch>.h5``. Call :func:`parse_training_args`
    to fill in those per-architecture defaults.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(name=name, base_defaults={"epochs": epochs, "batch_size": batch_size},
                        arch_defaults=archs or {})
    if archs:
        parser.add_argument("--arch", choices=list(archs), default=default_arch,
                            help=f"which network to train (default: {default_arch})")

    def per_arch(flag: str, value) -> str:
        special = [f"{value_of} for {arch}" for arch, overrides in (archs or {}).items()
                   if (value_of := overrides.get(flag)) is not None]
        return f"default: {value}" + (f"; {', '.join(special)}" if special else "")

    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"passes over the training set ({per_arch('epochs', epochs)})")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help=f"images per training step ({per_arch('batch_size', batch_size)})")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                        help="optimizer (default: adam)")
    parser.add_argument("--learning-rate", "--lr", type=positive_float, default=None,
                        help="learning rate (default: the optimizer's own, 0.001 for adam, "
                             "0.01 for sgd)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                        help="learning rate over the run: constant; cosine, decaying to 0; "
                             "onecycle, warming up for the first 20%% of steps, then cosine "
                             f"(default: {schedule})")
    parser.add_argument("--validation-split", type=fraction, default=0.2,
                        help="fraction of the training set, taken from its end, held out "
                             "for validation; 0 for none (default: 0.2)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed for weights and shuffling (default: {DEFAULT_SEED})")
    parser.add_argument("--output", default=None,
                        help=f"where to save the model (default: models/{name}"
                             f"{'_<arch>' if archs else ''}.h5); a JSON record goes beside it")
    parser.add_argument("--data", default=None,
                        help="local MNIST: a folder with the four IDX files or mnist.npz "
                             "(default: $MNIST_DATA, else download through Keras)")
    parser.add_argument("--target-accuracy", type=accuracy, default=None,
                        help="stop once validation accuracy (test accuracy with "
                             "--validation-split 0) reaches this (default: off)")
    parser.add_argument("--no-plot", action="store_true",
                        help="do not draw the training curves beside the model "
                             "(default: models/<name>.png)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch "
                             "(default: start afresh)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the final result (default: one line per epoch, "
                             "or a progress bar on a terminal)")
    return parser


def parse_training_args(parser: argparse.ArgumentParser,
                        argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and fill the defaults that depend on ``--arch``."""
    args = parser.parse_args(argv)
    overrides = args.arch_defaults.get(getattr(args, "arch", None), {})
    for flag, value in {**args.base_defaults, **overrides}.items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    arch = getattr(args, "arch", None)
    args.run_name = f"{args.name}_{arch}" if arch else args.name
    if args.output is None:
        args.output = f"models/{args.run_name}.h5"
    if not args.output.endswith(".h5"):
        parser.error(f"--output {args.output}: the model file name must end in .h5")
    del args.base_defaults, args.arch_defaults
    return args
