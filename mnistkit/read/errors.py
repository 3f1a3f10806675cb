"""The one exception of the read stage, in a module of its own so that every reader (Keras,
SavedModel, TFLite, ONNX) can raise it without importing the others."""


class ModelError(Exception):
    """A file that is not a usable MNIST classifier; the message says why."""
