"""The answer to one picture from every model draw.py serves: the JSON of ``/api/predict``.

The models themselves live in worker processes (``mnistkit.isolation.ModelHost``): a model
that crashes or hangs costs its own answer, never the server.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnistkit.images import ImageError, read_picture, split_digits
from mnistkit.loading import ModelError

UNSURE = 0.5  # a top probability under this is flagged on the page


def accuracy_of(model) -> float | None:
    """The test accuracy in a hosted model's JSON record (``record["test"]["accuracy"]``)."""
    test = (model.record or {}).get("test")
    value = test.get("accuracy") if isinstance(test, dict) else None
    return float(value) if isinstance(value, int | float) else None


def ranked(models: list) -> list:
    """Hosted models most accurate first (by their records), those that failed to load last."""
    return sorted(models, key=lambda m: (m.error is not None, -(accuracy_of(m) or 0), m.path))


def read_upload(body: bytes) -> np.ndarray:
    """A picture sent as bytes (PNG, JPEG, ...) as grayscale floats; ImageError if it is not
    one, or if it unpacks to more pixels than any drawing or photo needs."""
    if not body:
        raise ImageError("the request has no picture (empty body)")
    return read_picture(io.BytesIO(body), name="the picture")


def answer(host, gray: np.ndarray) -> dict:
    """What every model reads in the picture: the JSON that ``POST /api/predict`` returns."""
    digits = split_digits(gray)
    images = np.round(np.stack(digits) * 255).astype(np.uint8)
    hosted_models = ranked(host.models)
    # The models run in worker processes of their own: ask them all at once, and encode the
    # inputs for the page while they answer.
    with ThreadPoolExecutor(max_workers=len(hosted_models)) as pool:
        answers = [None if hosted.error else pool.submit(host.predict, hosted.path, images)
                   for hosted in hosted_models]
        inputs = [png_data_url(image) for image in images]
        models = [_entry(hosted, future) for hosted, future in zip(hosted_models, answers,
                                                                     strict=True)]
    readings = {entry["reading"] for entry in models if "reading" in entry}
    return {"input": inputs[0], "inputs": inputs, "agree": len(readings) <= 1, "models": models}


def _entry(hosted, future) -> dict:
    """One model's card: its reading and probabilities, or why it has none."""
    entry: dict = {"file": hosted.path, "accuracy": accuracy_of(hosted)}
    if future is None:
        return {**entry, "error": hosted.error}
    try:
        probabilities = future.result()
    except ModelError as error:  # its worker died or hung; it is restarted for the next
        return {**entry, "error": str(error)}
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
