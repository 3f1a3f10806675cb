"""Export a saved Keras model in other formats, and check every export on the spot, through
the very readers evaluate.py uses, before any of them is put beside the model.

:func:`export_and_check` is what ``export.py`` and the training scripts' ``--export`` call.
One worker process (an :class:`Exporter`, ``mnistkit.workers``) does the work, with
TensorFlow as Keras' backend whatever the training ran on (SavedModel and TFLite are
TensorFlow's formats):

1. it scores the model file as evaluate.py does (the score stage's ``ModelTasks.score``: the
   same loading, pixel scale, all 10,000 test images, the same latency measurement);
2. it writes every export into a hidden folder beside the model (``formats.write_exports``);
3. it scores each export the same way, at the model's pixel scale.

The exports are then renamed into place together, only if every one passed its check: a
float export must predict what the model predicts (a handful of images on a knife edge may
flip, from another library's float rounding; more is a bug), an int8 export must stay within
INT8_TOLERANCE of the model's accuracy. Otherwise nothing is written and the error says why.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistkit import system
from mnistkit.files.data import Mnist
from mnistkit.files.saving import TEMP_STEM, move_into_place
from mnistkit.read.errors import ModelError
from mnistkit.read.sniffing import detect_format
from mnistkit.score.model_reader import ModelReader
from mnistkit.score.model_tasks import ModelTasks
from mnistkit.workers.process import DEFAULT_MEMORY_GB
from mnistkit.write.errors import ExportError
from mnistkit.write.formats import FLOAT_FORMATS, check_export_targets

FLOAT_DIFFERENCES = 5  # test images a float export may predict otherwise (float rounding)
INT8_TOLERANCE = 0.003  # accuracy an int8 export may lose or gain: 30 of 10,000 test images
EXPORT_TIMEOUT = 600.0  # seconds for one step in the worker: writing them all, or one score
KERAS_FORMATS = ("h5", "keras")  # what can be exported: Keras models, loaded by Keras


@dataclass
class ExportRow:
    """One file's line of the table: the Keras model's own, or an export's."""

    format: str  # "keras" for the model itself, else one of formats.FORMATS
    path: Path
    bytes: int
    accuracy: float
    differing: int | None  # test images whose digit differs from the Keras model's
    ms_per_image: float  # one image at a time, the median of evaluate.py's timed calls


class ExportTasks(ModelTasks):
    """The score stage's worker tasks, and one more: writing the exports (``export``).
    ExportError crosses to the parent as itself."""

    errors = (ExportError,)

    def __init__(self, mnist: Mnist):
        os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is first imported, below
        super().__init__(mnist)

    def export(self, model_path: str, targets: dict[str, str], scale: str) -> None:
        """Load the Keras model and write it to each of ``targets`` ({format: path}); the
        int8 ranges are measured on training images at the model's pixel ``scale``."""
        import keras

        from mnistkit.prepare.inputs import prepare_images
        from mnistkit.read.loading import io_shapes, load_model_file
        from mnistkit.write.formats import calibration_images, write_exports

        try:
            model = load_model_file(model_path)
            images = calibration_images(self.mnist.train_images)
            write_exports(model, {name: Path(path) for name, path in targets.items()},
                          prepare_images(images, io_shapes(model)[0], scale))
        finally:
            keras.backend.clear_session(free_memory=True)


class Exporter(ModelReader):
    """The parent's side of the export worker: a model reader that also exports."""

    def __init__(self, mnist: Mnist, timeout: float, memory_gb: float):
        super().__init__(mnist, timeout, memory_gb, ExportTasks, reader="exporter")

    def export(self, model_path: str, targets: dict[str, str], scale: str) -> None:
        return self.worker.call(ExportTasks.export, model_path, targets, scale)


def export_and_check(model_path: str | Path, formats: tuple[str, ...], mnist: Mnist,
                     pixels: str = "auto", timeout: float = EXPORT_TIMEOUT,
                     memory_gb: float = DEFAULT_MEMORY_GB) -> list[ExportRow]:
    """Write the Keras model at ``model_path`` in each of ``formats`` beside it, check each
    export on all test images and print the table; the rows, the model's first. ``pixels``:
    the scale the model takes (``mnistkit.prepare.pixels``; auto, as evaluate.py). Raises
    :class:`ExportError` (one line, nothing written) for a file that is not a Keras model,
    a layer a format cannot hold, or an export that fails its check, and OutputError for
    targets that cannot be written."""
    model_path = Path(model_path)
    targets = check_export(model_path, formats)
    print(f"exporting {model_path} as {', '.join(formats)}; checking each on all "
          f"{len(mnist.test_labels):,} test images, as evaluate.py reads it", flush=True)
    staging = staging_folder(model_path)
    try:
        staged = {name: staging / target.name for name, target in targets.items()}
        rows = _export_in_worker(model_path, staged, mnist, pixels, timeout, memory_gb)
        for row, target in zip(rows[1:], targets.values(), strict=True):
            row.path = target
        print(markdown_table(rows))
        if failures := check_rows(rows):
            raise ExportError("; ".join(failures) + "; nothing exported")
        move_into_place({staged[name]: target for name, target in targets.items()})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {', '.join(_shown(name, target) for name, target in targets.items())} "
          f"in {model_path.parent}{os.sep}")
    return rows


def check_export(model_path: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """{format: target} once the model is a Keras file (by its first bytes) and every target
    can be written: what export.py checks before the backend and MNIST load. ExportError or
    OutputError in one line otherwise."""
    try:
        kind = detect_format(model_path)  # the first bytes only: a quick answer
    except ModelError as error:
        raise ExportError(f"{model_path}: {error}") from None
    if kind not in KERAS_FORMATS:
        raise ExportError(f"{model_path}: a {kind} model; only Keras models (.h5, .keras) are "
                          "exported")
    return check_export_targets(model_path, formats)


def staging_folder(model_path: Path) -> Path:
    """A new hidden folder beside the model (evaluate.py skips it; a rename from it into place
    stays on one file system), named with this process's id. A kill -9 leaves its folder
    behind: the next export of the model removes those whose process is gone."""
    stem = model_path.stem[:TEMP_STEM]
    ours = re.compile(rf"\.{re.escape(stem)}\.([0-9]+)\.[^.]+\.exports")
    with contextlib.suppress(OSError):  # an unlistable folder: the export itself will say
        for entry in model_path.parent.iterdir():
            found = ours.fullmatch(entry.name)
            if found and not system.process_running(int(found[1])):
                shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{stem}.{os.getpid()}.", suffix=".exports",
                                 dir=model_path.parent))


def _export_in_worker(model_path: Path, staged: dict[str, Path], mnist: Mnist, pixels: str,
                      timeout: float, memory_gb: float) -> list[ExportRow]:
    try:
        exporter = Exporter(mnist, timeout, memory_gb)
    except ModelError as error:
        raise ExportError(str(error)) from None
    try:
        original, _ = exporter.score(str(model_path), pixels, False, False)
        if original.error:
            raise ExportError(f"{model_path}: {original.error}")
        print(f"pixels fed to the model and to every export: {original.input_scale}"
              f"{' (auto)' if pixels == 'auto' else ''}", flush=True)
        if original.warning:
            print(f"warning: {model_path.name}: {original.warning}", flush=True)
        try:
            exporter.export(str(model_path), {name: str(path) for name, path in staged.items()},
                            original.input_scale)
        except ExportError as error:  # the worker's reason, named after the file as below
            raise ExportError(f"{model_path}: {error}") from None
        rows = [_row("keras", original, None)]
        for name, path in staged.items():
            scored, _ = exporter.score(str(path), original.input_scale, False, False)
            if scored.error:
                raise ExportError(f"{name}: the export cannot be read back: {scored.error}")
            rows.append(_row(name, scored, original.predicted))
    except ModelError as error:  # the worker died, hung, or the export raised
        raise ExportError(f"{model_path}: {error}") from None
    finally:
        exporter.close()
    return rows


def _row(name: str, scored, expected: np.ndarray | None) -> ExportRow:
    differing = None if expected is None else int(np.sum(scored.predicted != expected))
    return ExportRow(name, Path(scored.path), scored.bytes, scored.accuracy, differing,
                     scored.latency["ms_per_image_batch1"])


def check_rows(rows: list[ExportRow]) -> list[str]:
    """What is wrong with each export, in words; empty when all passed."""
    original, failures = rows[0], []
    for row in rows[1:]:
        if row.format in FLOAT_FORMATS and row.differing > FLOAT_DIFFERENCES:
            failures.append(f"{row.format}: {row.differing} test images predicted otherwise "
                            f"than by the Keras model (at most {FLOAT_DIFFERENCES} from float "
                            "rounding)")
        gap = row.accuracy - original.accuracy
        if row.format not in FLOAT_FORMATS and abs(gap) > INT8_TOLERANCE:
            failures.append(f"{row.format}: test accuracy {row.accuracy:.4f}, {abs(gap) * 100:.2f}"
                            f" points {'under' if gap < 0 else 'over'} the Keras model's "
                            f"{original.accuracy:.4f} (at most {INT8_TOLERANCE * 100:g})")
    return failures


def markdown_table(rows: list[ExportRow]) -> str:
    """The rows as a Markdown table: format, file, size, accuracy, differing images, time."""
    lines = ["| format | file | size | test accuracy | differing test images | ms/image "
             "(batch 1) |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        differing = "–" if row.differing is None else f"{row.differing:,}"
        lines.append(f"| {'Keras' if row.format == 'keras' else row.format} | "
                     f"`{_shown(row.format, row.path)}` | {row.bytes / 1024:,.1f} KiB | "
                     f"{row.accuracy:.4f} | {differing} | {row.ms_per_image:.2f} |")
    return "\n".join(lines)


def _shown(format_name: str, path: Path) -> str:
    return f"{path.name}{os.sep}" if format_name == "savedmodel" else path.name
