"""The one exception of the read stage, in a module of its own so that every reader (Keras,
SavedModel, TFLite, ONNX) can raise it without importing the others."""


class ModelError(Exception):
    """A file that is not a usable MNIST classifier; the message says why."""


# What a file saved with save_weights() lacks, and the two ways to a readable model
WEIGHTS_ONLY = ("holds weights only, no architecture (saved with save_weights): to read it, "
                "build the model in its own code and call load_weights() on this file, or "
                "save the model whole with model.save()")
