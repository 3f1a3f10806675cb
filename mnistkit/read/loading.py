"""Load any Keras MNIST classifier file without running code stored in it.

The first stage after the file itself: everything that reads a model file goes through
:func:`load_model_file`, which either returns a model that takes 28x28 images and gives 10
classes, or raises :class:`ModelError` with the reason in words.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from mnistkit.files.data import NUM_CLASSES
from mnistkit.prepare.inputs import layout_for
from mnistkit.read import legacy

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
        raise ModelError("not a regular file (a folder, FIFO or device)" if path.exists()
                         else "no such file")
    with open(path, "rb") as file:
        signature = file.read(8)
    if signature == HDF5_SIGNATURE:
        if path.suffix not in (".h5", ".hdf5"):
            raise ModelError("an HDF5 file must be named .h5 or .hdf5 for Keras to load it")
    elif signature.startswith(ZIP_SIGNATURE) and path.suffix == ".keras":
        _check_zip_sizes(path)
    else:
        raise ModelError("not a Keras model file (no HDF5 signature)")
    try:
        with warnings.catch_warnings():  # Keras 2 files draw advice meant for their authors
            warnings.simplefilter("ignore", UserWarning)
            if signature == HDF5_SIGNATURE and _written_by_keras_2(path):
                model = _load_keras_2(path, trust_code)
            else:
                model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except ModelError:
        raise
    except Exception as error:  # Keras raises many types; each becomes one readable reason
        raise ModelError(reason(error)) from None
    if long := next((name for name in _layer_names(model) if len(name) > MAX_NAME), None):
        raise ModelError(f"a layer name of {len(long):,} characters (at most {MAX_NAME:,}): "
                         "the backend would copy it into every operation it runs")
    check_fits_mnist(model)
    return model


MAX_NAME = 1000  # names are identifiers; TensorFlow copies them into every op it traces


def _layer_names(layer):
    yield layer.name
    for inner in getattr(layer, "layers", []):
        yield from _layer_names(inner)


MAX_CONFIG_BYTES = 16 * 2**20  # a model's config is kilobytes; more is a zip bomb


def _check_zip_sizes(path: Path) -> None:
    """Refuse a .keras zip whose JSON members unpack to more than a config can be: Keras
    reads config.json whole into memory."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.filename.endswith(".json") and member.file_size > MAX_CONFIG_BYTES:
                    raise ModelError(f"{member.filename} unpacks to {member.file_size:,} "
                                     f"bytes; a model's config has at most {MAX_CONFIG_BYTES:,}")
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"not a readable .keras zip ({error})") from None


def _written_by_keras_2(path: Path) -> bool:
    """True for files of Keras 1/2 and tf.keras, whose configs :mod:`mnistkit.read.legacy` repairs
    (a damaged file is left to Keras, whose message says how it is damaged)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            version = file.attrs.get("keras_version", b"")
    except OSError:
        return False
    version = version.decode() if isinstance(version, bytes) else str(version)
    return not version.startswith("3.")


def _load_keras_2(path: Path, trust_code: bool):
    """Build the model from its repaired config, then let Keras load the stored weights.

    The repaired config and the untouched weights go into a temporary copy of the file, so
    that Keras' own .h5 loader matches weights to layers exactly as it does for Keras 2 files.
    """
    import tempfile

    import h5py
    import keras

    with h5py.File(path, "r") as source:
        raw = source.attrs.get("model_config")
        if raw is None:
            raise ModelError("holds no model architecture (a weights-only file?)")
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            raise ModelError("its stored model config is not valid JSON") from None
        code = legacy.stored_code(config)
        if code and not trust_code:
            raise ModelError(
                f"holds stored Python code (Lambda layer {code[0]!r} with Python bytecode); "
                "refused in safe mode so that it cannot run; --trust-code lifts this, only for "
                "files you trust")
        version = source.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        try:
            repaired = legacy.repair_config(config, version or "2")
        except legacy.LegacyError as error:
            raise ModelError(str(error)) from None
        except (KeyError, TypeError, AttributeError) as error:
            raise ModelError(f"its stored model config is not one Keras wrote ({error!r})") \
                from None
        if "model_weights" not in source:
            raise ModelError("holds no weights (saved without them?)")
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "repaired.h5"
            with h5py.File(copy, "w") as target:
                for key, value in source.attrs.items():
                    if key not in ("model_config", "training_config"):
                        target.attrs[key] = value
                target.attrs["model_config"] = json.dumps(repaired)
                source.copy(source["model_weights"], target, "model_weights")
            model = keras.models.load_model(copy, compile=False, safe_mode=not trust_code)
        backend = source.attrs.get("backend", b"")
    if (backend.decode() if isinstance(backend, bytes) else str(backend)) == "theano":
        _flip_theano_kernels(model)
    return model


def _flip_theano_kernels(model) -> None:
    """Theano's convolution flips its kernels, TensorFlow's does not: Keras 2 flipped the stored
    kernels of Theano files when loading them elsewhere, and Keras 3 no longer does."""
    for layer in _all_layers(model):
        if type(layer).__name__ in ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose"):
            kernel = np.asarray(layer.kernel)
            flip = tuple([slice(None, None, -1)] * (kernel.ndim - 2) + [slice(None)] * 2)
            layer.kernel.assign(np.ascontiguousarray(kernel[flip]))


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


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
        return "holds no model architecture (a weights-only file?)"
    # Keras wraps the cause: "Error when deserializing class 'Dense' using config={...}.
    # Exception encountered: <cause>"; the cause is what the user needs.
    causes = re.split(r"Exception encountered:\s*", text)
    cause = re.sub(r"config=\{.*\}", "config={...}", causes[-1]).strip()
    where = re.findall(r"deserializing class '(\w+)'", text)
    prefix = f"layer {where[-1]}: " if where and len(causes) > 1 else ""
    cause = prefix + cause
    return f"could not be loaded: {cause[:300]}{'...' if len(cause) > 300 else ''}"
