"""Where training runs: the device, the precision, and data parallelism over devices or machines.

:func:`prepare` runs before the backend loads, since some choices are environment variables
that the backends read when they start; :func:`place` runs after it and returns a
:class:`Placement`, under whose ``scope()`` training builds and compiles the model. Its
precision is a value (:mod:`mnistkit.train.precision`) that the model that trains is given;
a distribution over JAX devices is Keras' one process-wide setting, undone by
:func:`release` before the trained weights go into a plain model.

Engines: TensorFlow's ``MirroredStrategy`` and Keras' ``DataParallel`` on JAX. Several machines
(or processes) go through JAX's multi-process runtime, configured as ``keras.distribution``
documents it by the ``KERAS_DISTRIBUTION_*`` variables; TensorFlow's
``MultiWorkerMirroredStrategy`` fails inside ``fit`` under Keras 3 (keras-team/keras#20585).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

import numpy as np

from mnistkit import runtime
from mnistkit.train import precision
from mnistkit.train.config import TrainingConfig

MULTI_PROCESS_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES",
                           "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


class DeviceError(Exception):
    """The device, precision or distribution asked for cannot be had here."""


@dataclass
class Placement:
    device: str                    # e.g. "GPU: NVIDIA H100 80GB HBM3" or "CPU: ... (2 cores)"
    precision: str = "float32"     # or Keras' "mixed_float16" / "mixed_bfloat16"
    engine: str | None = None      # the distribution engine, None for one device
    replicas: int = 1              # devices that each train on a share of every batch
    processes: int = 1
    process_index: int = 0
    strategy: object = None        # TensorFlow's tf.distribute strategy, if any

    @property
    def is_chief(self) -> bool:
        """Whether this process saves: the only one, or process 0 of several."""
        return self.process_index == 0

    @property
    def local_replicas(self) -> int:
        return self.replicas // self.processes

    def scope(self):
        """Where the model and its optimizer must be created (TensorFlow's strategy scope)."""
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def describe(self) -> str:
        text = self.device
        if self.precision != "float32":
            text += f", {self.precision}"
        if self.engine:
            text += f", data-parallel over {self.replicas} devices ({self.engine}"
            if self.processes > 1:
                text += f", process {self.process_index} of {self.processes}"
            text += ")"
        return text

    def as_dict(self) -> dict:
        return {"device": self.device, "precision": self.precision, "engine": self.engine,
                "replicas": self.replicas, "processes": self.processes}


def prepare(config: TrainingConfig) -> None:
    """Set what the backends read from the environment when they load."""
    if config.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # TensorFlow, torch and JAX's CUDA plugin
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["KERAS_TORCH_DEVICE"] = "cpu"  # else Keras takes Apple silicon's GPU (MPS)
    if config.cpu_devices > 1:  # JAX's way; TensorFlow's is in place()
        flag = f"--xla_force_host_platform_device_count={config.cpu_devices}"
        os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), flag]))


def place(config: TrainingConfig) -> Placement:
    """Choose device, precision and engine as ``config`` asks; call :func:`release` after."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        _configure_tensorflow(config)
    if backend == "jax" and config.distribute:
        _join_processes()
    device = runtime.device()
    on_gpu = device.startswith("GPU")
    if config.device == "gpu" and not on_gpu:
        raise DeviceError(f"--device gpu: no GPU is visible to {backend}")
    placement = Placement(device=device, precision=precision.choose(
        config.precision, backend, on_gpu, config.distribute))
    if config.distribute:
        if backend == "tensorflow":
            _distribute_tensorflow(placement, on_gpu)
        elif backend == "jax":
            _distribute_jax(placement)
        else:
            raise DeviceError(f"--distribute: Keras has no data-parallel engine for {backend}; "
                              "use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax")
    return placement


def release() -> None:
    """Undo :func:`place`'s one process-wide setting, JAX's distribution over devices."""
    import keras

    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


def _configure_tensorflow(config: TrainingConfig) -> None:
    import tensorflow as tf

    try:
        if config.device == "cpu":  # for callers of train_and_evaluate, who skip prepare()
            tf.config.set_visible_devices([], "GPU")
        if config.cpu_devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * config.cpu_devices)
    except RuntimeError:  # TensorFlow fixes its devices once it has computed anything
        raise DeviceError("--device/--cpu-devices: TensorFlow has already started in this "
                          "process; set them before anything else runs") from None


def _distribute_tensorflow(placement: Placement, on_gpu: bool) -> None:
    import tensorflow as tf

    workers = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {}).get("worker", [])
    if len(workers) > 1:
        raise DeviceError("--distribute: TF_CONFIG names several workers, but Keras 3 cannot "
                          "train under MultiWorkerMirroredStrategy (keras-team/keras#20585); "
                          "use KERAS_BACKEND=jax with KERAS_DISTRIBUTION_* (see the README)")
    devices = [d.name for d in tf.config.list_logical_devices("GPU" if on_gpu else "CPU")]
    placement.strategy = tf.distribute.MirroredStrategy(devices)
    placement.engine = "MirroredStrategy"
    placement.replicas = placement.strategy.num_replicas_in_sync


def _join_processes() -> None:
    """Join the other processes named by ``KERAS_DISTRIBUTION_*``, if any, before JAX
    computes anything (JAX requires it); returns once all have joined."""
    import keras

    if not any(name in os.environ for name in MULTI_PROCESS_VARIABLES):
        return
    try:
        keras.distribution.initialize()
    except Exception as error:  # a bad address or count: say which, in one line
        raise DeviceError("--distribute: cannot join the processes named by "
                          f"KERAS_DISTRIBUTION_*: {' '.join(str(error).split())}") from None


def _distribute_jax(placement: Placement) -> None:
    import jax
    import keras

    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    placement.processes, placement.process_index = jax.process_count(), jax.process_index()
    # Each process passes only its own share of the training set (see shard()).
    distribution.auto_shard_dataset = placement.processes == 1
    keras.distribution.set_distribution(distribution)
    placement.engine = "DataParallel"
    placement.replicas = jax.device_count()


def shard(placement: Placement, images: np.ndarray, labels: np.ndarray):
    """This process's share of the training set, cut to a multiple of its devices, since
    JAX splits every batch evenly between them."""
    if placement.engine != "DataParallel":
        return images, labels
    images, labels = (images[placement.process_index::placement.processes],
                      labels[placement.process_index::placement.processes])
    keep = len(images) - len(images) % placement.local_replicas
    return images[:keep], labels[:keep]


def host_weights(model) -> list[np.ndarray]:
    """The weights as NumPy arrays, read from this process's own copy of each."""
    import keras

    if keras.backend.backend() != "jax":
        return model.get_weights()
    # Over several processes a replicated array spans devices this process cannot read;
    # its first local shard is a whole copy.
    return [np.asarray(weight.value.addressable_data(0)) for weight in model.weights]
