"""``--tensorboard DIR``: Keras' TensorBoard callback, a folder per run, continued by ``--resume``.

Each run writes into ``DIR/<run name>-<start time>/`` (``train/`` and ``validation/``, as Keras
lays them out): loss, accuracy and learning rate once per epoch, no per-batch data. The
folder is kept in the checkpoint, so a resumed run continues the same curves. The callback
writes an epoch only after its checkpoint, so a run killed in between can miss an epoch
but never log one twice; on resumption the missing epochs are written from the history
the checkpoint holds.
"""

from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path

REQUIREMENT = "tensorboard==2.21.0"


def missing_package() -> str | None:
    """Why ``--tensorboard`` cannot work here, or None. Keras writes the logs with
    ``tensorflow.summary``, which silently writes no scalars without ``tensorboard``."""
    for package in ("tensorflow", "tensorboard"):
        if importlib.util.find_spec(package) is None:
            return (f"the {package} package is not installed, and Keras needs it to write "
                    f"TensorBoard logs (pip install {REQUIREMENT} tensorflow)")
    return None


def run_folder(root: str | Path, run_name: str, state: dict) -> Path:
    """The run's log folder: the one the checkpoint names when resuming into the same root,
    else a new one. Recorded in ``state``, which the checkpoint saves."""
    earlier = state.get("tensorboard_run")
    if earlier and Path(earlier).parent == Path(root):
        return Path(earlier)
    started = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    state["tensorboard_run"] = str(Path(root) / f"{run_name}-{started}")
    return Path(state["tensorboard_run"])


def callback(folder: Path):
    import keras

    return keras.callbacks.TensorBoard(log_dir=str(folder), histogram_freq=0, write_graph=False,
                                       update_freq="epoch", profile_batch=0)


def write_missing_epochs(folder: Path, history: dict[str, list[float]]) -> None:
    """Write the epochs of ``history`` that the logs lack (those finished and checkpointed
    but killed before the callback wrote them), with Keras' tags and folders."""
    import tensorflow as tf

    done = len(history.get("loss", []))
    for split, prefix in (("train", ""), ("validation", "val_")):
        names = [key for key in history if key.startswith(prefix)
                 and (prefix or not key.startswith(("val_", "test_")))]
        if not names:
            continue
        logged = logged_epochs(folder / split)
        if logged >= done:
            continue
        writer = tf.summary.create_file_writer(str(folder / split))
        with writer.as_default():
            for epoch in range(logged, done):
                for name in names:
                    if epoch < len(history[name]):
                        tf.summary.scalar(f"epoch_{name[len(prefix):]}", history[name][epoch],
                                          step=epoch)
        writer.close()


def logged_epochs(folder: Path) -> int:
    """How many epochs the event files in ``folder`` hold (a record cut short by a kill is
    unreadable, so it does not count)."""
    steps = {step for step, tag, _ in read_scalars(folder) if tag == "epoch_loss"}
    return max(steps) + 1 if steps else 0


def read_scalars(folder: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in the event files in ``folder``."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        try:
            for raw in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(raw.numpy())
                found.extend((event.step, value.tag, float(tf.make_ndarray(value.tensor)))
                             for value in event.summary.value if value.HasField("tensor"))
        except tf.errors.DataLossError:  # a record cut short by a kill ends the readable part
            continue
    return found
