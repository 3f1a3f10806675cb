"""The export formats: their names on the command line, where each goes beside the model,
and one writer each (SavedModel, TFLite float, TFLite int8, ONNX).

Each export gets a name of its own beside the model (``cnn_fast.h5`` gives
``cnn_fast_savedmodel/``, ``cnn_fast_float.tflite``, ``cnn_fast_int8.tflite`` and
``cnn_fast_float.onnx``), never the model's own stem: a model's JSON record is found by that
stem (``records.record_path``), and an export named ``cnn_fast.tflite`` would claim the
record of ``cnn_fast.h5`` and make a later training run to ``cnn_fast.h5`` refuse to start
(``run_record.check_record_is_ours``). Nothing here imports TensorFlow at import time, so the
flags that take formats answer at once.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import numpy as np

from mnistkit.files.records import record_path
from mnistkit.files.saving import check_folder_target, check_targets
from mnistkit.write.errors import ExportError

# savedmodel: TensorFlow's SavedModel folder, by Keras' own model.export(); tflite: TensorFlow
# Lite, float32; tflite-int8: TensorFlow Lite with int8 weights and activations; onnx: ONNX,
# float32, written by mnistkit.write.onnx_graph
FORMATS = ("savedmodel", "tflite", "tflite-int8", "onnx")
NAMES = {"savedmodel": "{}_savedmodel", "tflite": "{}_float.tflite",
         "tflite-int8": "{}_int8.tflite", "onnx": "{}_float.onnx"}
FLOAT_FORMATS = ("savedmodel", "tflite", "onnx")  # their predictions must be the model's
CALIBRATION_IMAGES = 500  # training images that set the int8 ranges: more changed nothing


def export_formats(text: str) -> tuple[str, ...]:
    """An argparse type: formats separated by commas, each one of FORMATS, in FORMATS' order."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown format {unknown[0]!r} (choose from {', '.join(FORMATS)}, separated by "
            "commas)")
    return tuple(name for name in FORMATS if name in names)


def export_targets(model_path: str | Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """{format: where its export goes}: beside the model, named after it (``NAMES``)."""
    model_path = Path(model_path)
    return {name: model_path.with_name(NAMES[name].format(model_path.stem)) for name in formats}


def exported_from(path: str | Path) -> Path | None:
    """The Keras model beside ``path`` that ``path`` is an export of, by NAMES (for
    ``cnn_fast_int8.tflite``, ``cnn_fast.h5`` or ``cnn_fast.keras``), or None."""
    path = Path(path)
    for pattern in NAMES.values():
        suffix = pattern.format("")
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            stem = path.name[:-len(suffix)]
            for keras_suffix in (".h5", ".keras"):
                if (path.parent / f"{stem}{keras_suffix}").is_file():
                    return path.parent / f"{stem}{keras_suffix}"
    return None


def check_export_targets(model_path: str | Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """The targets, once each is known to be writable (OutputError otherwise) and not to
    stand beside another model's record (ExportError). Nothing is written."""
    targets = export_targets(model_path, formats)
    for name, target in targets.items():
        if name == "savedmodel":
            check_folder_target(target)
        else:
            check_targets([target])
        if record_path(target).exists():
            raise ExportError(f"{target}: {record_path(target)} beside it is the record of "
                              "another model; move that model away first")
    return targets


def write_exports(model, targets: dict[str, Path], calibration: np.ndarray) -> None:
    """Write ``model`` (Keras, loaded) in each format of ``targets``, to its path there.
    ``calibration``: training images laid out and scaled as the model's input takes them."""
    if "onnx" in targets:  # first: the one format that may refuse a layer, and in a second
        write_onnx(model, targets["onnx"])
    needs_saved_model = {"tflite", "tflite-int8"} & set(targets)
    with tempfile.TemporaryDirectory() as scratch:
        saved = targets.get("savedmodel")
        if saved or needs_saved_model:
            saved = write_saved_model(model, saved or Path(scratch) / "saved_model")
        if "tflite" in targets:
            write_tflite(saved, targets["tflite"])
        if "tflite-int8" in targets:
            write_tflite(saved, targets["tflite-int8"], calibration)


def write_saved_model(model, folder: Path) -> Path:
    """Keras' own export, a SavedModel whose ``serving_default`` takes a batch of images,
    with the model called in inference mode. ``model.export(format="tf_saved_model")``
    leaves ``training`` unset, and Keras' augmentation layers (RandomRotation, ...) then
    take their own default, ``training=True``: the modern CNN's export rotated, shifted and
    zoomed every image it was asked about, at random (9 and 10 of 2,000 test images read
    otherwise on two calls, Keras 3.15.1), and TFLite cannot convert its random ops."""
    import keras

    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", functools.partial(model.__call__, training=False),
                             input_signature=[keras.InputSpec(shape=model.input_shape,
                                                              dtype="float32")])
        archive.write_out(str(folder), verbose=False)
    except Exception as error:  # Keras and TensorFlow raise many types while tracing
        raise ExportError(f"SavedModel export: {' '.join(str(error).split())[:200]}") from None
    return folder


def write_tflite(saved_model: Path, path: Path, calibration: np.ndarray | None = None) -> Path:
    """TFLite converted from the SavedModel, TFLite's builtin operators only (a model that
    needed TensorFlow's own ops would need the Flex delegate, which our reader refuses).

    With ``calibration``: full-integer quantisation, every weight and activation int8, the
    ranges measured on those images. The input and output stay float32, quantised and
    dequantised inside the model: the file takes the same 0-1 images and gives the same
    probabilities as every other export, so any caller can swap it in; int8 tensors at the
    ends would only pay off on integer-only chips (microcontrollers, Edge TPU), and cost
    every other caller the scale and zero point to apply by hand.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        path.write_bytes(converter.convert())
    except Exception as error:  # the converter's ConverterError names the operator
        kind = "TFLite int8" if calibration is not None else "TFLite"
        raise ExportError(f"{kind} export: {' '.join(str(error).split())[:200]}") from None
    return path


def write_onnx(model, path: Path) -> Path:
    from mnistkit.write.onnx_graph import keras_to_onnx

    path.write_bytes(keras_to_onnx(model).SerializeToString())
    return path


def calibration_images(images: np.ndarray) -> np.ndarray:
    """CALIBRATION_IMAGES uint8 images spread over ``images`` (the training set's, never the
    test set's: the test set must stay unseen by everything that shapes a model)."""
    step = max(1, len(images) // CALIBRATION_IMAGES)
    return images[::step][:CALIBRATION_IMAGES]
