"""The quicker ways this project trains than plain Keras, all behind this one module.

Each computes what Keras computes, by a faster path (their measured effects are in
docs/speed.md):

- batch normalisation's training step through TensorFlow's fused kernel (``fused_norm``);
- Adam's update through TensorFlow's fused kernel (``fused_adam``);
- on JAX with a GPU, many training steps in one compiled call (``fused_steps``);
- the metrics' and optimizer's variables made before ``fit`` traces its step, which
  TensorFlow would otherwise trace twice.

They reach into Keras' internals (private members, the step function), so they are used only
with the Keras release they were written for; with any other, or with ``MNISTKIT_SPEEDUPS=0``,
a run trains with plain Keras, and says so once.
"""

from __future__ import annotations

import os
import sys

WRITTEN_FOR = "3.15."  # the Keras release whose internals the speed-ups use
SWITCH = "MNISTKIT_SPEEDUPS"
_said = False


def enabled() -> bool:
    """Whether the speed-ups apply: the Keras they were written for, and not switched off."""
    global _said
    import keras

    if os.environ.get(SWITCH) == "0":
        return False
    if keras.__version__.startswith(WRITTEN_FOR):
        return True
    if not _said:
        print(f"note: Keras {keras.__version__}: training with plain Keras (the speed-ups "
              f"were written for Keras {WRITTEN_FOR}x)", file=sys.stderr)
        _said = True
    return False


def layer_class(layer) -> type:
    """The class a layer trains as: the fused batch normalisation in place of Keras' own."""
    import keras

    if enabled() and keras.backend.backend() == "tensorflow" \
            and type(layer) is keras.layers.BatchNormalization:
        from mnistkit.train.fused_norm import FusedBatchNormalization

        return FusedBatchNormalization
    return type(layer)


def plain_class(layer) -> type:
    """The Keras class a trained layer is saved as."""
    from mnistkit.train.fused_norm import FusedBatchNormalization

    return FusedBatchNormalization.__base__ if type(layer) is FusedBatchNormalization \
        else type(layer)


def swapped(model) -> bool:
    """Whether ``model`` holds layers of the speed-ups' classes."""
    return any(plain_class(layer) is not type(layer) for layer in model.layers)


def optimizer(built):
    """``built``, its update through the fused kernel where it is plain Adam on TensorFlow."""
    if enabled():
        from mnistkit.train.fused_adam import use_fused_update

        use_fused_update(built)
    return built


def compiled(model, images, labels, strategy: bool) -> None:
    """After ``compile``: the variables ``fit``'s step would create, made now (TensorFlow,
    one device: one trace of the step instead of two, the same run bit for bit); on JAX, the
    steps of a call fused into one compiled loop."""
    if not enabled():
        return
    import keras

    from mnistkit.train.fused_steps import fuse_steps

    fuse_steps(model)
    if keras.backend.backend() != "tensorflow" or strategy:
        return
    # Scoring with training=False draws no random numbers and moves no statistics.
    model.compute_metrics(images, labels, model(images, training=False), None)
    model.reset_metrics()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
