"""The one exception of the write stage, in a module of its own so that the format writers,
the ONNX translation and the check of the results can all raise it."""


class ExportError(Exception):
    """A model that cannot be exported, or an export that failed its check; the message says
    why in one line."""
