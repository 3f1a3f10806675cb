"""Command-line flags shared by the scripts.

Nothing here imports TensorFlow or Keras, so ``--help`` and refused flags answer at once.
"""

from __future__ import annotations

import argparse
import math

DEVICES = ("auto", "cpu", "gpu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("auto", "float32", "mixed")
DEFAULT_SEED = 1


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


# Bounds beyond which a value is a typo, not a wish: they keep the backends from aborting.
positive_int = whole_number(1, 1_000_000)
MAX_BATCH = 60_000  # MNIST's whole training set in one step
MAX_CPU_DEVICES = 64
MAX_SEED = 2**32 - 1  # NumPy and TensorFlow take seeds below 2**32


def add_pixels_flag(parser: argparse.ArgumentParser) -> None:
    """``--pixels``: the pixel scale fed to models (mnistkit.inputs.SCALES), or auto."""
    parser.add_argument("--pixels", choices=("auto", "0-1", "0-255", "standardised", "normalize"),
                        default="auto",
                        help="pixel scale fed to the models: 0-1 (x/255), 0-255 (raw), "
                             "standardised ((x/255 - 0.1307)/0.3081), normalize "
                             "(keras.utils.normalize(x, axis=1)); auto picks, per model, the "
                             "one that classifies 1,000 training images best (default: auto)")


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


# The tutorials' settings; a script or an architecture may change any of them.
TRAINING_DEFAULTS = {"epochs": 5, "batch_size": 128, "optimizer": "adam", "learning_rate": None,
                     "schedule": "constant", "validation_split": 0.2, "precision": "float32",
                     "label_smoothing": 0.0}


def training_parser(name: str, description: str, *, archs: dict[str, dict] | None = None,
                    default_arch: str | None = None) -> argparse.ArgumentParser:
    """The parser every ``train_*.py`` script uses.

    ``name`` gives the default output, ``models/<name>.h5``. With ``archs``, each mapped to
    the settings in which it differs from ``TRAINING_DEFAULTS``, the parser gets ``--arch``
    and the output defaults to ``models/<name>_<arch>.h5``. Call :func:`parse_training_args`
    to fill in the defaults of the chosen architecture.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(name=name, arch_defaults=archs or {})
    if archs:
        parser.add_argument("--arch", choices=list(archs), default=default_arch,
                            help=f"which network to train (default: {default_arch})")

    def default(flag: str, shown=None) -> str:
        special = [f"{value} for {arch}" for arch, overrides in (archs or {}).items()
                   if (value := overrides.get(flag)) is not None]
        shown = shown or TRAINING_DEFAULTS[flag]
        return f"default: {shown}" + (f"; {', '.join(special)}" if special else "")

    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"passes over the training set ({default('epochs')})")
    parser.add_argument("--batch-size", type=whole_number(1, MAX_BATCH), default=None,
                        help=f"images per training step ({default('batch_size')})")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                        help=f"optimizer ({default('optimizer')})")
    parser.add_argument("--learning-rate", "--lr", type=positive_float, default=None,
                        help="peak learning rate (" + default(
                            "learning_rate", "the optimizer's own, 0.001 for adam, 0.01 for sgd")
                        + ")")
    parser.add_argument("--schedule", choices=SCHEDULES, default=None,
                        help="learning rate over the run: constant; cosine, decaying to 0; "
                             "onecycle, warming up for the first 20%% of steps, then cosine "
                             f"({default('schedule')})")
    parser.add_argument("--validation-split", type=fraction, default=None,
                        help="fraction of the training set, taken from its end, held out "
                             f"for validation; 0 for none ({default('validation_split')})")
    parser.add_argument("--label-smoothing", type=fraction, default=None,
                        help="train towards targets of s/10 for every digit plus 1 - s for "
                             "the right one, instead of 0 and 1: the model stops growing ever "
                             f"more confident on the training set ({default('label_smoothing')})")
    parser.add_argument("--seed", type=whole_number(0, MAX_SEED), default=DEFAULT_SEED,
                        help="random seed for weights, shuffling and augmentation, 0 to 2**32-1 "
                             f"(default: {DEFAULT_SEED})")
    parser.add_argument("--output", default=None,
                        help=f"where to save the model (default: models/{name}"
                             f"{'_<arch>' if archs else ''}.h5; name it .keras for Keras' "
                             "native format); a JSON record goes beside it")
    parser.add_argument("--data", default=None,
                        help="local MNIST: a folder with the four IDX files or mnist.npz "
                             "(default: $MNIST_DATA, else download through Keras)")
    parser.add_argument("--target-accuracy", type=accuracy, default=None,
                        help="stop once validation accuracy (test accuracy with "
                             "--validation-split 0) reaches this (default: off)")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also write TensorBoard logs (loss, accuracy, learning rate per "
                             "epoch) to DIR/<run>-<time>/; view with tensorboard --logdir DIR "
                             "(default: off)")
    parser.add_argument("--no-plot", action="store_true",
                        help="do not draw the training curves beside the model "
                             "(default: models/<name>.png)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch "
                             "(default: start afresh)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where to train: auto takes a GPU when one is visible "
                             "(default: auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="arithmetic: float32 throughout; mixed computes in float16 on a "
                             "GPU and bfloat16 on a CPU, keeping the weights and the output "
                             "layer in float32; auto is mixed when training on one CPU that "
                             "has bfloat16 instructions (AVX512-BF16 or AMX) under TensorFlow, "
                             "float32 elsewhere. The model is saved in float32 "
                             f"({default('precision')})")
    parser.add_argument("--mixed-precision", dest="precision", action="store_const",
                        const="mixed", help="the same as --precision mixed")
    parser.add_argument("--distribute", action="store_true",
                        help="train data-parallel over every visible device (TensorFlow: "
                             "MirroredStrategy; JAX: keras.distribution.DataParallel, also over "
                             "several processes, see the README); --batch-size is then per "
                             "device (default: one device)")
    parser.add_argument("--cpu-devices", type=whole_number(1, MAX_CPU_DEVICES), default=1,
                        help="with --distribute and no GPU, split the CPU into this many "
                             "devices, to try data parallelism on a laptop (default: 1)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the final result (default: one line per epoch, "
                             "or a progress bar on a terminal)")
    return parser


def parse_training_args(parser: argparse.ArgumentParser,
                        argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and fill the defaults that depend on ``--arch``."""
    args = parser.parse_args(argv)
    overrides = args.arch_defaults.get(getattr(args, "arch", None), {})
    for flag, value in {**TRAINING_DEFAULTS, **overrides}.items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    arch = getattr(args, "arch", None)
    args.run_name = f"{args.name}_{arch}" if arch else args.name
    if args.output is None:
        args.output = f"models/{args.run_name}.h5"
    if not args.output.endswith((".h5", ".keras")) or args.output.endswith(".ckpt.keras"):
        parser.error(f"--output {args.output}: the model file name must end in .h5 (Keras' "
                     "HDF5 format) or .keras (its native format), and not in .ckpt.keras")
    if args.tensorboard:
        from mnistkit.tensorboard_logs import missing_package

        if why := missing_package():
            parser.error(f"--tensorboard: {why}")
    if args.cpu_devices > 1 and not args.distribute:
        parser.error("--cpu-devices: only has an effect with --distribute")
    del args.arch_defaults
    return args
