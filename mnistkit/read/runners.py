"""Models that Keras does not load (SavedModel folders, TFLite, ONNX), behind the few calls
that scoring makes of a Keras model.

The score stage calls ``model.predict(inputs, batch_size=..., verbose=0)``,
``model.predict_on_batch(inputs)``, ``model.count_params()`` and reads
``model.input_shape`` / ``model.output_shape`` (with the batch axis). A :class:`Runner`
answers exactly these, so the worker's ``ModelTasks`` and ``score_file`` treat every format
alike and the Keras path stays as it was. Each format's reader (``read/onnx_files.py``,
``read/tflite_files.py``, ``read/saved_models.py``) checks the file before anything in it
runs, and says in one line which package to install when its own is missing.
"""

from __future__ import annotations

import numpy as np

MAX_MODEL_BYTES = 1 << 30  # an MNIST model is at most tens of MB; more is not one


class Runner:
    """A loaded model of another framework, answering the calls scoring makes of Keras.

    Subclasses set the shapes (without the batch axis), the parameter count and, for a model
    whose batch size is fixed, ``fixed_batch``; and implement :meth:`_run` on one batch.
    """

    format = ""

    def __init__(self, input_shape: tuple, output_shape: tuple, params: int,
                 fixed_batch: int | None = None):
        self.input_shape = (None, *input_shape)
        self.output_shape = (None, *output_shape)
        self.params = params
        self.fixed_batch = fixed_batch

    def count_params(self) -> int:
        return self.params

    def predict(self, inputs: np.ndarray, batch_size: int = 1000, verbose: int = 0) -> np.ndarray:
        """Outputs for all ``inputs``, in batches of ``batch_size`` (Keras' signature)."""
        del verbose  # Keras' progress bar: nothing to show here
        inputs = np.asarray(inputs)
        return np.concatenate([self.predict_on_batch(inputs[start:start + batch_size])
                               for start in range(0, len(inputs), batch_size)])

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for one batch; a model built for a fixed batch size runs it piece by
        piece, the last piece padded with zeros."""
        inputs = np.asarray(inputs)
        size = self.fixed_batch
        if not size or len(inputs) == size:
            return np.asarray(self._run(inputs))
        parts = []
        for start in range(0, len(inputs), size):
            piece = inputs[start:start + size]
            padded = np.concatenate([piece, np.zeros((size - len(piece), *piece.shape[1:]),
                                                     piece.dtype)])
            parts.append(np.asarray(self._run(padded))[:len(piece)])
        return np.concatenate(parts)

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def cast_for(inputs: np.ndarray, dtype: np.dtype, scale: float = 0.0,
             zero_point: int = 0) -> np.ndarray:
    """Float inputs as an input tensor of ``dtype`` takes them: quantised with ``scale`` and
    ``zero_point`` when it has them, else rounded, and clipped to an integer type's range."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        return inputs.astype(dtype)
    values = inputs / scale + zero_point if scale else inputs
    limits = np.iinfo(dtype)
    return np.clip(np.round(values), limits.min, limits.max).astype(dtype)


def fixed_dim(value) -> int | None:
    """A dimension as a number, or None where it is free (-1, 0, None, a symbolic name)."""
    return int(value) if isinstance(value, int | np.integer) and value > 0 else None

