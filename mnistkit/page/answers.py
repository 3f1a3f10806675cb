"""The answer to one picture from every model draw.py serves: the JSON of ``/api/predict``.

The models live in worker processes (``mnistkit.score.hosting.ModelHost``), and the picture
is decoded in one (``mnistkit.score.pictures``): a model or a picture that crashes or hangs
costs its own answer, never the server.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from mnistkit.files.records import test_accuracy
from mnistkit.score.pictures import Answer, PictureReader, picture_answers

UNSURE = 0.5  # a top probability under this is flagged on the page
# Seconds a drawing waits for the models: each answers in milliseconds, or a second or two
# when a new number of digits makes it trace its call again. A model slower than this is
# marked late and left out; it is not asked again until its earlier answer is in.
DEADLINE = 3.0


def ranked(models: list) -> list:
    """Hosted models most accurate first (by their records), those that failed to load last."""
    return sorted(models, key=lambda m: (m.error is not None, -(test_accuracy(m.record) or 0),
                                         m.path))


def answer(host, reader: PictureReader, body: bytes, deadline: float | None = None) -> dict:
    """What every model reads in the picture ``body``: the JSON that ``POST /api/predict``
    returns. With a ``deadline`` (seconds; draw.py's is DEADLINE) a model that has not
    answered by then is left out, its entry marked ``late``. ImageError when it is not a
    picture with a digit."""
    hosted_models = ranked(host.models)
    loaded = [hosted.path for hosted in hosted_models if not hosted.error and not hosted.loading]
    digits, answers = picture_answers(reader, host, body, "the picture", loaded, deadline)
    by_path = {answer.path: answer for answer in answers}
    models = [_entry(hosted, by_path.get(hosted.path)) for hosted in hosted_models]
    readings = {entry["reading"] for entry in models if "reading" in entry}
    inputs = [png_data_url(image) for image in digits]
    return {"input": inputs[0], "inputs": inputs, "agree": len(readings) <= 1, "models": models}


def _entry(hosted, answer: Answer | None) -> dict:
    """One model's card: its reading and probabilities, or why it has none."""
    entry: dict = {"file": hosted.path, "accuracy": test_accuracy(hosted.record)}
    if answer is None and not hosted.error:  # not asked: loading while draw.py serves
        return {**entry, "error": "still loading", "loading": True}
    if answer is None or answer.error:
        entry["error"] = hosted.error if answer is None else answer.error
        return {**entry, "late": True} if answer and answer.late else entry
    probabilities = answer.probabilities
    predicted = probabilities.argmax(axis=1)
    entry["reading"] = "".join(str(int(digit)) for digit in predicted)
    entry["unsure"] = bool(probabilities.max(axis=1).min() < UNSURE)
    entry["digits"] = [{"predicted": int(digit),
                        "probabilities": [round(float(p), 5) for p in row]}
                       for digit, row in zip(predicted, probabilities, strict=True)]
    return entry


def png_data_url(image: np.ndarray) -> str:
    """A uint8 28x28 picture as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
