"""Load any Keras MNIST classifier file without running code stored in it.

The first stage after the file itself: everything that reads a model file goes through
:func:`load_model_file`, which either returns a model that takes 28x28 images and gives 10
classes, or raises :class:`ModelError` with the reason in words.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from mnistkit.data import NUM_CLASSES
from mnistkit.inputs import layout_for

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"


class ModelError(Exception):
    """A file that is not a usable MNIST classifier; the message says why."""


def load_model_file(path: str | Path, trust_code: bool = False):
    """Load a ``.h5`` (or ``.keras``) model without running code stored in it.

    Keras' safe mode refuses ``Lambda`` layers and other pickled Python functions;
    ``trust_code=True`` lifts that for files the user trusts. Raises :class:`ModelError`.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError("no such file")
    with open(path, "rb") as file:
        signature = file.read(8)
    if signature == HDF5_SIGNATURE:
        if path.suffix not in (".h5", ".hdf5"):
            raise ModelError("an HDF5 file must be named .h5 or .hdf5 for Keras to load it")
    elif signature.startswith(ZIP_SIGNATURE) and path.suffix == ".keras":
        pass
    else:
        raise ModelError("not a Keras model file (no HDF5 signature)")
    try:
        with warnings.catch_warnings():  # Keras 2 files draw advice meant for their authors
            warnings.simplefilter("ignore", UserWarning)
            model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as error:  # Keras raises many types; each becomes one readable reason
        raise ModelError(_reason(error)) from None
    check_fits_mnist(model)
    return model


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


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if "lambda" in text.lower() or "safe_mode" in text:
        return ("holds stored Python code (a Lambda layer); refused so that it cannot run; "
                "use --trust-code only for files you trust")
    sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if sizes:
        return f"truncated HDF5 file ({sizes[1]} bytes of the {sizes[2]} it should have)"
    if "truncated" in text or "file signature not found" in text or "Unable to" in text:
        return f"damaged HDF5 file ({text[:120]})"
    if "No model config" in text or "model_config" in text:
        return "holds no model architecture (a weights-only file?)"
    return f"could not be loaded: {text[:160]}"
