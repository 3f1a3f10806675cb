"""The precision a run computes in, as a value: chosen once from the flags and the machine,
then given to the model that trains. Nothing here sets Keras' process-wide dtype policy.

A model is built as the script writes it, in float32; the copy that trains computes in the
run's precision (:func:`training_copy`), and the trained weights go back into float32 layers
(:func:`plain_copy`): what is tested and saved is a plain float32 model whatever trained it.
"""

from __future__ import annotations

from collections.abc import Callable

from mnistkit import runtime

FLOAT32 = "float32"


def choose(setting: str, backend: str, on_gpu: bool, distributed: bool) -> str:
    """Keras' policy name for ``--precision`` (auto, float32, mixed) on this machine.

    float16 is fast on every GPU of the last decade (Keras scales the loss so that small
    gradients survive); CPUs have no float16 arithmetic, but recent ones have bfloat16. ``auto``
    takes mixed precision only where it was measured to pay: one CPU with bfloat16
    instructions, under TensorFlow (docs/speed.md)."""
    if setting == "auto":
        mixed = (backend == "tensorflow" and not on_gpu and not distributed
                 and runtime.cpu_has_bfloat16())
    else:
        mixed = setting == "mixed"
    if not mixed:
        return FLOAT32
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


def training_copy(model, policy: str, layer_class: Callable | None = None):
    """``model`` itself when nothing changes; else a copy with the same weights whose layers
    compute in ``policy`` (the output layer in float32: a softmax in float16 rounds small
    probabilities to 0, and their cross-entropy to infinity) and whose classes
    ``layer_class(layer)`` may swap (the speed-ups' fused layers)."""
    swaps = layer_class is not None and any(layer_class(layer) is not type(layer)
                                            for layer in model.layers)
    if policy == FLOAT32 and not swaps:
        return model
    last = model.layers[-1]

    def dtype_of(layer):
        return FLOAT32 if layer is last else policy

    return _copy(model, policy, dtype_of, layer_class)


def plain_copy(model, weights, layer_class: Callable | None = None):
    """A float32 copy of ``model`` holding ``weights``, its layers of the classes
    ``layer_class(layer)`` gives (Keras' own, in place of the speed-ups')."""
    return _copy(model, FLOAT32, lambda layer: FLOAT32, layer_class, weights)


def _copy(model, policy: str, dtype_of: Callable, layer_class: Callable | None,
          weights=None):
    import keras

    def clone(layer):
        kind = layer_class(layer) if layer_class else type(layer)
        return kind.from_config({**layer.get_config(), "dtype": dtype_of(layer)})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.dtype_policy = keras.DTypePolicy(policy)  # compile wraps mixed_float16 in loss scaling
    copy.set_weights(model.get_weights() if weights is None else weights)
    return copy
