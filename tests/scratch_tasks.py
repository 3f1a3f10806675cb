"""Worker tasks that leave temporary files behind, as TensorFlow's autograph, ONNX
Runtime and Keras' unpacking do, to test that a worker's scratch folder goes with it."""

import tempfile
import time
from pathlib import Path

from mnistkit.read.errors import ModelError
from mnistkit.workers.tasks import Tasks


class LitteringTasks(Tasks):
    failure = ModelError

    def temporary_folder(self) -> str:
        return tempfile.gettempdir()

    def litter(self, hang: bool) -> str:
        """Write a file where temporary files go; hang afterwards when asked to."""
        with tempfile.NamedTemporaryFile(delete=False, suffix=".unpacked") as stream:
            stream.write(bytes(2**20))
        if hang:
            time.sleep(3600)
        return str(Path(stream.name).parent)
