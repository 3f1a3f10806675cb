"""What a model worker does, in the worker, with the backend loaded: the only code that opens
model files. The parent asks through :class:`mnistkit.score.model_reader.ModelReader`, whose
methods run these (``mnistkit.workers``)."""

from __future__ import annotations

import numpy as np

from mnistkit.files.data import Mnist
from mnistkit.prepare.inputs import prepare_images
from mnistkit.prepare.pixels import resolve_scale
from mnistkit.read.loading import ModelError, io_shapes, load_model_file, reason
from mnistkit.score.evaluation import Row, as_probabilities, classifier, score_file
from mnistkit.workers.serving import MEMORY_HINTS
from mnistkit.workers.tasks import Tasks


class ModelTasks(Tasks):
    """A model worker's tasks: ``about``, ``score`` (evaluate.py), ``load`` and ``predict``
    (predict.py, draw.py). ModelError crosses to the parent as itself."""

    failure = ModelError

    def __init__(self, mnist: Mnist | None = None):
        from mnistkit import backend, runtime

        backend.load_backend_quietly()
        self.device = runtime.device()  # the backend's devices found: its libraries loaded
        self.mnist = mnist
        self.loaded: dict[str, tuple[object, str]] = {}  # path: (model, input scale)

    @staticmethod
    def unexpected(error: Exception) -> str:
        """A model that loads but cannot run (bad weights, ops), in Keras' words cut short."""
        return f"failed to run: {reason(error)}"

    def about(self) -> dict:
        """What the models run on, for the parent's report."""
        from mnistkit import backend, runtime

        return {"device": self.device, "versions": runtime.versions(),
                "backend": backend.backend()}

    def score(self, path: str, pixels: str, trust_code: bool,
              keep_probabilities: bool) -> tuple[Row, np.ndarray | None]:
        """evaluate.py's whole stage for one file: a (row, probabilities) pair, the row with
        the model's cost timed here, where it ran, and with its accuracy on each corrupted
        test set when the parent built them (``Mnist.corrupted``). Keras' global state (layer
        names, graphs) is reset after each file, so that nothing one file left behind can
        touch the next one's row."""
        import keras

        from mnistkit.prepare.corruption_cache import corrupted_sets

        try:
            row, probabilities = score_file(path, self.mnist, pixels=pixels,
                                            trust_code=trust_code,
                                            keep_probabilities=keep_probabilities,
                                            measure_cost=True,
                                            corruptions=corrupted_sets(self.mnist))
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
            scale, _ = resolve_scale(classifier(model), pixels, self.mnist)
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
