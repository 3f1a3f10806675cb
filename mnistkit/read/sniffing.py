"""What format a model file is in, told by its content, never by its name.

People rename files (an HDF5 file saved as ``model.keras``, a download without its suffix), so
the readers are chosen by the bytes: the HDF5 signature, a zip holding a Keras config, a
FlatBuffer with TFLite's identifier, an ONNX protobuf, a folder holding ``saved_model.pb``.
Only the first bytes of a file (and a zip's directory) are read here; each reader checks the
rest before it trusts it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mnistkit.read.errors import ModelError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
TFLITE_IDENTIFIER = b"TFL3"  # a FlatBuffer's file identifier sits at bytes 4-8
# ONNX's IR version was 3 in ONNX 1.0 (2017) and is 11 in 2025: another first varint is not
# ONNX (a SavedModel's saved_model.pb starts with its schema version, 1)
ONNX_IR_VERSIONS = range(3, 33)
SAVED_MODEL_PB = b"\x08\x01\x12"  # schema version 1, then the first meta graph

# The formats, as a row's "format" says them: Keras HDF5, Keras zip, TensorFlow SavedModel,
# TensorFlow Lite, ONNX
FORMATS = ("h5", "keras", "saved_model", "tflite", "onnx")


def detect_format(path: str | Path) -> str:
    """One of FORMATS for the model at ``path``; :class:`ModelError` saying what the
    entry is instead ("not a model file: ...")."""
    path = Path(path)
    try:
        is_folder = path.is_dir()
    except OSError as error:  # a name too long for the file system, say: no such file either
        raise ModelError(f"cannot be read: {(error.strerror or str(error)).lower()}") from None
    if is_folder:
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelError("not a model file: a folder without saved_model.pb (not a "
                         "TensorFlow SavedModel)")
    if not path.is_file():
        raise ModelError("not a regular file (a FIFO or device)" if path.exists()
                         else "no such file")
    with open(path, "rb") as file:
        head = file.read(16)
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    if head.startswith(ZIP_SIGNATURE):
        return _zip_format(path)
    if head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    if head.startswith(SAVED_MODEL_PB):
        raise ModelError("not a model file by itself: a SavedModel's saved_model.pb; name the "
                         "folder that holds it and its variables/")
    if _onnx_header(head):
        return "onnx"
    raise ModelError(f"not a model file: {_what(head)}, not HDF5, a .keras zip, TFLite, ONNX "
                     "or a SavedModel folder")


def _zip_format(path: Path) -> str:
    """A zip is a Keras model when its directory names Keras' config or metadata."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"not a readable .keras zip ({error})") from None
    if names & {"config.json", "metadata.json"}:
        return "keras"
    raise ModelError("not a model file: a zip archive without config.json (not a .keras model)")


def _onnx_header(head: bytes) -> bool:
    """ONNX writes its ModelProto's fields in order, ``ir_version`` (field 1, a varint) first:
    the tag byte 0x08 and a small number. The ONNX reader parses the rest."""
    return len(head) >= 2 and head[0] == 0x08 and head[1] in ONNX_IR_VERSIONS


def _what(head: bytes) -> str:
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary content"
    return "text"
