"""What a worker process (mnistkit.isolation) does with model files: the only code that
opens them. Runs in the worker, with the backend loaded."""

from __future__ import annotations

import numpy as np

from mnistkit.data import Mnist
from mnistkit.evaluation import as_probabilities, resolve_scale, score_file
from mnistkit.inputs import prepare_images
from mnistkit.isolation import MEMORY_HINTS
from mnistkit.loading import ModelError, io_shapes, load_model_file


class Handler:
    """Answers the requests a worker receives: ``score``, ``load`` and ``predict``."""

    def __init__(self, mnist: Mnist | None):
        self.mnist = mnist
        self.loaded: dict[str, tuple[object, str]] = {}  # path: (model, input scale)

    def about(self) -> dict:
        """What the models run on, for the parent's report."""
        from mnistkit import runtime

        return {"device": runtime.device(), "versions": runtime.versions(),
                "backend": runtime.backend()}

    def score(self, path: str, pixels: str, trust_code: bool, keep_probabilities: bool):
        """evaluate.py's whole stage for one file: a (row, probabilities) pair. Keras' global
        state (layer names, graphs) is reset after each file, so that nothing one file left
        behind can touch the next one's row."""
        import keras

        try:
            row, probabilities = score_file(path, self.mnist, pixels=pixels,
                                            trust_code=trust_code,
                                            keep_probabilities=keep_probabilities)
            if row.error and any(hint in row.error for hint in MEMORY_HINTS):
                # The backend's allocators may keep what they got: the next file's row
                # would fail too. The worker ends, and a fresh one takes the next file.
                raise MemoryError(row.error)
            return row, probabilities
        finally:
            keras.backend.clear_session(free_memory=True)

    def load(self, path: str, pixels: str, trust_code: bool) -> tuple[str, int]:
        """Load a model to keep for predictions: its input scale and parameter count."""
        model = load_model_file(path, trust_code=trust_code)
        if pixels == "auto" and self.mnist is None:
            scale = "0-1"  # no training images to decide with: MNIST's usual scale
        else:
            scale, _ = resolve_scale(model, pixels, self.mnist)
        self.loaded[path] = (model, scale)
        for count in (1, 2):  # trace the call once now, for one digit and for several
            self.predict(path, np.zeros((count, 28, 28), np.uint8))
        return scale, int(model.count_params())

    def predict(self, path: str, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, 10) for uint8 images (n, 28, 28). ``predict_on_batch`` runs the
        compiled call once: a millisecond or two, where ``model.predict`` sets up a dataset
        and callbacks on every call (tens of milliseconds)."""
        if path not in self.loaded:
            raise ModelError("the model is not loaded")
        model, scale = self.loaded[path]
        inputs = prepare_images(images, io_shapes(model)[0], scale)
        outputs = np.asarray(model.predict_on_batch(inputs), np.float64)
        if not np.all(np.isfinite(outputs)):
            raise ModelError("its outputs are not finite numbers (NaN or infinite weights?)")
        return as_probabilities(outputs.reshape(len(images), -1))
