"""Model files written by Keras 1/2 and tf.keras: their configs repaired (``legacy``), their
weights loaded by Keras 3 as Keras stored them.

Two containers: ``.h5`` files (Keras 2.0 to 2.15) and the ``.keras`` zips that Keras 2.13 to
2.15 could already write, whose ``metadata.json`` names the Keras that wrote them. Both get
the same repairs: the repaired config and the untouched weights go into a temporary copy,
which Keras' own loader reads.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mnistkit.read import legacy
from mnistkit.read.errors import WEIGHTS_ONLY, ModelError


def written_by_keras_2(path: Path) -> bool:
    """True for .h5 files of Keras 1/2 and tf.keras, whose configs :mod:`legacy` repairs
    (a damaged file is left to Keras, whose message says how it is damaged)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            version = file.attrs.get("keras_version", b"")
    except OSError:
        return False
    version = version.decode() if isinstance(version, bytes) else str(version)
    return not version.startswith("3.")


def zip_keras_version(path: Path) -> str:
    """The ``keras_version`` a .keras zip's metadata.json names ("" when it names none). The
    caller has checked the JSON members' sizes (``loading._check_zip_sizes``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "metadata.json" not in archive.namelist():
                return ""
            metadata = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelError(f"its metadata.json cannot be read ({error})") from None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else ""


def repaired(config, version: str, trust_code: bool) -> dict:
    """``config`` (parsed JSON) repaired for Keras 3, refusing stored Python code."""
    if not isinstance(config, dict):
        raise ModelError("its stored model config is not a JSON object")
    code = legacy.stored_code(config)
    if code and not trust_code:
        raise ModelError(
            f"holds stored Python code (Lambda layer {code[0]!r} with Python bytecode); "
            "refused in safe mode so that it cannot run; --trust-code lifts this, only for "
            "files you trust")
    try:
        return legacy.repair_config(config, version or "2")
    except legacy.LegacyError as error:
        raise ModelError(str(error)) from None
    except (KeyError, TypeError, AttributeError) as error:
        raise ModelError(f"its stored model config is not one Keras wrote ({error!r})") from None


def load_keras_2_h5(path: Path, trust_code: bool):
    """Build the model from its repaired config, then let Keras load the stored weights, so
    that Keras' own .h5 loader matches weights to layers exactly as it does for Keras 2."""
    import h5py
    import keras

    with h5py.File(path, "r") as source:
        raw = source.attrs.get("model_config")
        if raw is None:
            raise ModelError(WEIGHTS_ONLY)
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            raise ModelError("its stored model config is not valid JSON") from None
        version = source.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        config = repaired(config, version, trust_code)
        if "model_weights" not in source:
            raise ModelError("holds no weights (saved without them?)")
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "repaired.h5"
            with h5py.File(copy, "w") as target:
                for key, value in source.attrs.items():
                    if key not in ("model_config", "training_config"):
                        target.attrs[key] = value
                target.attrs["model_config"] = json.dumps(config)
                source.copy(source["model_weights"], target, "model_weights")
            model = keras.models.load_model(copy, compile=False, safe_mode=not trust_code)
        backend = source.attrs.get("backend", b"")
    if (backend.decode() if isinstance(backend, bytes) else str(backend)) == "theano":
        _flip_theano_kernels(model)
    return model


def load_keras_2_zip(path: Path, version: str, trust_code: bool):
    """A .keras zip of Keras 2.13-2.15: its config.json repaired, its weights file and assets
    copied as Keras 2 wrote them (Keras 3 reads them so), but for Windows' backslashes."""
    import keras

    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as folder:
            if "config.json" not in archive.namelist():
                raise ModelError("holds no model architecture (no config.json)")
            try:
                config = json.loads(archive.read("config.json"))
            except ValueError:
                raise ModelError("its config.json is not valid JSON") from None
            config = repaired(config, version, trust_code)
            copy = Path(folder) / "repaired.keras"
            with zipfile.ZipFile(copy, "w") as target:
                target.writestr("config.json", json.dumps(config))
                target.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
                for member in archive.infolist():
                    name = member.filename.replace("\\", "/")  # written on Windows
                    if name in ("config.json", "metadata.json"):
                        continue
                    if name.endswith(".h5"):
                        target.writestr(name, _forward_slashes(archive.read(member)))
                        continue
                    with archive.open(member) as inner, target.open(name, "w") as outer:
                        shutil.copyfileobj(inner, outer)
            return keras.models.load_model(copy, compile=False, safe_mode=not trust_code)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"not a readable .keras zip ({error})") from None


def _forward_slashes(weights: bytes) -> bytes:
    """The weights file with its HDF5 paths split by "/": Keras 2.13 and 2.14 joined them
    with the system's separator, so on Windows ``_layer_checkpoint_dependencies\\dense`` is
    one group, which Keras 3 never finds."""
    import io

    import h5py

    with h5py.File(io.BytesIO(weights), "r") as source:
        names = []
        source.visit(names.append)
        if not any("\\" in name for name in names):
            return weights
        copy = io.BytesIO()
        with h5py.File(copy, "w") as target:
            target.attrs.update(source.attrs)
            for name in names:
                item, fixed = source[name], name.replace("\\", "/")
                if isinstance(item, h5py.Dataset):
                    target.create_dataset(fixed, data=item[()])
                else:
                    target.require_group(fixed)
                target[fixed].attrs.update(item.attrs)
    return copy.getvalue()


def _flip_theano_kernels(model) -> None:
    """Theano's convolution flips its kernels, TensorFlow's does not: Keras 2 flipped the stored
    kernels of Theano files when loading them elsewhere, and Keras 3 no longer does."""
    for layer in _all_layers(model):
        if type(layer).__name__ in ("Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D"):
            kernel = np.asarray(layer.kernel)
            flip = tuple([slice(None, None, -1)] * (kernel.ndim - 2) + [slice(None)] * 2)
            layer.kernel.assign(np.ascontiguousarray(kernel[flip]))


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
