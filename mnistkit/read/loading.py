"""Load any MNIST classifier file without running code stored in it.

The first stage after the file itself: everything that reads a model file goes through
:func:`load_model_file`, which either returns a model that takes 28x28 images and gives 10
classes, or raises :class:`ModelError` with the reason in words.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from mnistkit.files.data import NUM_CLASSES
from mnistkit.prepare.inputs import layout_for
from mnistkit.read import legacy_files, runners
from mnistkit.read.errors import WEIGHTS_ONLY, ModelError
from mnistkit.read.sniffing import detect_format

__all__ = ["ModelError", "check_fits_mnist", "io_shapes", "load_model", "load_model_file",
           "reason"]


def load_model_file(path: str | Path, trust_code: bool = False):
    """Load a model file of any format :mod:`mnistkit.read.sniffing` knows, without running
    code stored in it; :func:`load_model` also says which format it was."""
    return load_model(path, trust_code)[0]


def load_model(path: str | Path, trust_code: bool = False) -> tuple[object, str]:
    """The model at ``path`` and its format (``sniffing.FORMATS``), told by its content.

    Keras files (.h5, .keras, whatever their names) load as Keras models; SavedModels, TFLite
    and ONNX files as :class:`mnistkit.read.runners.Runner`, which answers the calls scoring
    makes of a Keras model. Keras' safe mode refuses ``Lambda`` layers and other pickled
    Python functions; ``trust_code=True`` lifts that for files the user trusts. Raises
    :class:`ModelError`.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind in ("h5", "keras"):
        model = _load_keras(path, kind, trust_code)
    else:
        model = _load_runner(path, kind)
    check_fits_mnist(model)
    return model, kind


def _load_runner(path: Path, kind: str):
    """The reader of ``kind`` ("saved_model", "tflite" or "onnx") on ``path``, a
    :class:`~mnistkit.read.runners.Runner`; each imports its own package only when needed."""
    if kind == "saved_model":
        from mnistkit.read.saved_models import load_saved_model

        return load_saved_model(path)
    if path.stat().st_size > runners.MAX_MODEL_BYTES:
        raise ModelError(f"{path.stat().st_size:,} bytes; an MNIST model has at most "
                         f"{runners.MAX_MODEL_BYTES:,}")
    if kind == "tflite":
        from mnistkit.read.tflite_files import load_tflite

        return load_tflite(path)
    from mnistkit.read.onnx_files import load_onnx  # the one format left: "onnx"

    return load_onnx(path)


def _load_keras(path: Path, kind: str, trust_code: bool):
    import keras

    if kind == "keras":
        _check_zip_sizes(path)
    try:
        with warnings.catch_warnings():  # Keras 2 files draw advice meant for their authors
            warnings.simplefilter("ignore", UserWarning)
            if kind == "h5" and legacy_files.written_by_keras_2(path):
                model = legacy_files.load_keras_2_h5(path, trust_code)
            elif kind == "keras" and (version := legacy_files.zip_keras_version(path)
                                      ).startswith(("1.", "2.")):
                model = legacy_files.load_keras_2_zip(path, version, trust_code)
            else:
                with _named_for_keras(path, ".h5" if kind == "h5" else ".keras") as named:
                    model = keras.models.load_model(named, compile=False,
                                                    safe_mode=not trust_code)
    except ModelError:
        raise
    except Exception as error:  # Keras raises many types; each becomes one readable reason
        raise ModelError(reason(error)) from None
    if long := next((name for name in _layer_names(model) if len(name) > MAX_NAME), None):
        raise ModelError(f"a layer name of {len(long):,} characters (at most {MAX_NAME:,}): "
                         "the backend would copy it into every operation it runs")
    return model


@contextlib.contextmanager
def _named_for_keras(path: Path, suffix: str):
    """``path`` under a name with ``suffix``: Keras picks its reader by the name (an HDF5
    file named .keras, a download without a suffix), so a renamed file gets a link."""
    if path.suffix == suffix or (suffix == ".h5" and path.suffix == ".hdf5"):
        yield path
        return
    with tempfile.TemporaryDirectory() as folder:
        link = Path(folder) / f"model{suffix}"
        link.symlink_to(path.resolve())
        yield link


MAX_NAME = 1000  # names are identifiers; TensorFlow copies them into every op it traces


def _layer_names(layer):
    yield layer.name
    for inner in getattr(layer, "layers", []):
        yield from _layer_names(inner)


MAX_CONFIG_BYTES = 16 * 2**20  # a model's config is kilobytes; more is a zip bomb
MAX_UNPACKED_BYTES = 256 * 2**20  # the blog's CNN, 1.2 million weights, unpacks to 14 MB
MAX_MEMBERS = 1000


def _check_zip_sizes(path: Path) -> None:
    """Refuse a .keras zip that unpacks to more than a model can be: Keras reads config.json
    whole into memory, and unpacks every member to the temporary folder when the zip holds
    assets (as the Keras 2 repair does), so the sizes the zip declares are bounded, member by
    member and in all (Python's zip reader stops at the declared size)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"not a readable .keras zip ({error})") from None
    if len(members) > MAX_MEMBERS:
        raise ModelError(f"the .keras zip holds {len(members):,} files; a model's holds a few "
                         f"(at most {MAX_MEMBERS:,})")
    for member in members:
        if member.filename.endswith(".json") and member.file_size > MAX_CONFIG_BYTES:
            raise ModelError(f"{member.filename} unpacks to {member.file_size:,} "
                             f"bytes; a model's config has at most {MAX_CONFIG_BYTES:,}")
    if (total := sum(member.file_size for member in members)) > MAX_UNPACKED_BYTES:
        raise ModelError(f"the .keras zip unpacks to {total:,} bytes; an MNIST model's to at "
                         f"most {MAX_UNPACKED_BYTES:,}")


def check_fits_mnist(model) -> None:
    """Raise :class:`ModelError` unless the model takes 28x28 images and gives 10 classes."""
    input_shape, output_shape = io_shapes(model)
    try:
        layout_for(input_shape)
    except ValueError as error:
        raise ModelError(str(error)) from None
    if None in output_shape or int(np.prod(output_shape)) != NUM_CLASSES:
        raise ModelError(f"output shape {tuple(output_shape)} is not 10 classes")


def io_shapes(model) -> tuple[tuple, tuple]:
    try:
        input_shape, output_shape = model.input_shape, model.output_shape
    except (AttributeError, ValueError):
        raise ModelError("the model declares no input shape (an unbuilt model)") from None
    if isinstance(input_shape, list) or isinstance(output_shape, list):
        raise ModelError("the model has several inputs or outputs; expected one of each")
    return tuple(input_shape[1:]), tuple(output_shape[1:])


def reason(error: Exception) -> str:
    """Keras' message in one line, cut to the part that says why (not the config dump)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "TFOpLambda" not in text and ("`lambda`" in text or "Lambda layer" in text
                                     or "safe_mode" in text):
        return ("holds stored Python code (a Lambda layer with Python bytecode); refused in "
                "safe mode so that it cannot run; --trust-code lifts this, only for files you "
                "trust")
    if "marshal" in text or "code() argument" in text or "bad magic" in text:
        return ("its Lambda layer's Python bytecode was written by another Python version and "
                "cannot run here")
    sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if sizes:
        return f"truncated HDF5 file ({sizes[1]} bytes of the {sizes[2]} it should have)"
    if "truncated" in text or "file signature not found" in text or "Unable to" in text:
        return f"damaged HDF5 file ({text[:120]})"
    if "No model config" in text or "model_config" in text:
        return WEIGHTS_ONLY
    # Keras wraps the cause: "Error when deserializing class 'Dense' using config={...}.
    # Exception encountered: <cause>"; the cause is what the user needs.
    causes = re.split(r"Exception encountered:\s*", text)
    cause = re.sub(r"config=\{.*\}", "config={...}", causes[-1]).strip()
    where = re.findall(r"deserializing class '(\w+)'", text)
    prefix = f"layer {where[-1]}: " if where and len(causes) > 1 else ""
    cause = prefix + cause
    return f"could not be loaded: {cause[:300]}{'...' if len(cause) > 300 else ''}"
