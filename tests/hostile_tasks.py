"""Model worker tasks whose files crash, hang or exhaust memory on demand, to test that
mnistkit.workers keeps every such failure inside its worker (tests/test_isolation.py)."""

import ctypes
import os
import time

import numpy as np

from mnistkit.score.evaluation import Row
from mnistkit.score.model_tasks import ModelTasks


class HostileTasks(ModelTasks):
    def score(self, path, pixels, trust_code, keep_probabilities):
        self._misbehave(path)
        return Row(path=path, accuracy=0.99, errors=100, total=10_000), None

    def load(self, path, pixels, trust_code):
        self._misbehave(path)
        return "0-1", 10

    def predict(self, path, images):
        self._misbehave(path)
        if os.path.basename(path).startswith("crash_on_predict"):
            ctypes.string_at(0)
        if os.path.basename(path).startswith("slow_on_ink") and images.any():
            time.sleep(3600)  # a model whose inference loops on ink only: blanks load fine
        return np.full((len(images), 10), 0.1)

    @staticmethod
    def _misbehave(path):
        name = os.path.basename(path)
        if name.startswith("segfault"):
            ctypes.string_at(0)  # reads address 0: SIGSEGV, as the HDF5 library does
        if name.startswith("abort"):
            os.abort()
        if name.startswith("hang"):
            time.sleep(3600)
        if name.startswith("greedy"):
            bytearray(64 * 2**30)  # far beyond the worker's memory limit
        if name.startswith("hungry"):  # grows a page at a time: what a watchdog must catch
            chunks = []
            while True:
                chunks.append(bytearray(2**27))


class LoadingTasks(ModelTasks):
    """Models that take as long to load as their name says (``slow-3.h5``: 3 s) and read
    every digit as a 1, with no backend imported: draw.py serving while later models load."""

    def __init__(self, mnist=None):  # no backend: a worker that starts in a second
        self.mnist, self.loaded, self.device = mnist, {}, "CPU"

    def load(self, path, pixels, trust_code):
        name = os.path.basename(path)
        if name.startswith("slow-"):
            time.sleep(float(name.removeprefix("slow-").removesuffix(".h5")))
        self.loaded[path] = None
        return "0-1", 10

    def predict(self, path, images):
        probabilities = np.zeros((len(images), 10))
        probabilities[:, 1] = 1
        return probabilities
