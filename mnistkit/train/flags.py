"""train_*.py's command line: the flags every training script shares, parsed into a
:class:`~mnistkit.train.config.TrainingConfig`. Nothing here imports TensorFlow, so ``--help``
and refused flags answer at once."""

from __future__ import annotations

import argparse

from mnistkit.cli import Parser, accuracy, fraction, positive_float, positive_int, whole_number
from mnistkit.train.config import DEFAULT_SEED, TRAINING_DEFAULTS, TrainingConfig
from mnistkit.write.formats import FORMATS, export_formats

DEVICES = ("auto", "cpu", "gpu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("auto", "float32", "mixed")
MAX_BATCH = 60_000  # MNIST's whole training set in one step
MAX_CPU_DEVICES = 64
MAX_SEED = 2**32 - 1  # NumPy and TensorFlow take seeds below 2**32


def training_parser(name: str, description: str, *, archs: dict[str, dict] | None = None,
                    default_arch: str | None = None) -> argparse.ArgumentParser:
    """The parser every ``train_*.py`` script uses.

    ``name`` gives the default output, ``models/<name>.h5``. With ``archs``, each mapped to
    the settings in which it differs from ``TRAINING_DEFAULTS``, the parser gets ``--arch``
    and the output defaults to ``models/<name>_<arch>.h5``. Call :func:`parse_training_args`
    to fill in the defaults of the chosen architecture.
    """
    parser = Parser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(name=name, arch=None, arch_defaults=archs or {})
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
    parser.add_argument("--export", type=export_formats, default=(), metavar="FORMATS",
                        help="after saving, also write the model in these formats, separated "
                             f"by commas, of {', '.join(FORMATS)}: each checked on the test "
                             "set first, as export.py does (default: none)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the final result (default: one line per epoch, "
                             "or a progress bar on a terminal)")
    return parser


def parse_training_args(parser: argparse.ArgumentParser,
                        argv: list[str] | None = None) -> TrainingConfig:
    """Parse ``argv`` into the run's :class:`TrainingConfig`, with the defaults of the
    chosen architecture filled in."""
    args = parser.parse_args(argv)
    overrides = args.arch_defaults.get(args.arch, {})
    for flag, value in {**TRAINING_DEFAULTS, **overrides}.items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    if args.output is None:
        stem = f"{args.name}_{args.arch}" if args.arch else args.name
        args.output = f"models/{stem}.h5"
    if not args.output.endswith((".h5", ".keras")) or args.output.endswith(".ckpt.keras"):
        parser.error(f"--output {args.output}: the model file name must end in .h5 (Keras' "
                     "HDF5 format) or .keras (its native format), and not in .ckpt.keras")
    if args.tensorboard:
        from mnistkit.train.tensorboard_logs import missing_package

        if why := missing_package():
            parser.error(f"--tensorboard: {why}")
    if args.cpu_devices > 1 and not args.distribute:
        parser.error("--cpu-devices: only has an effect with --distribute")
    return TrainingConfig.from_namespace(args)
