"""Adam through TensorFlow's fused kernel trains as Keras' Adam does, to rounding."""

import keras
import numpy as np
import tensorflow as tf

from mnistkit.train.fused_adam import use_fused_update


def _train(fused: bool, steps: int = 20, **options) -> tuple[list[np.ndarray], list[str]]:
    """A small dense model trained ``steps`` Adam steps; its weights and the graph's ops."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3)])
    optimizer = keras.optimizers.Adam(learning_rate=0.01, **options)
    if fused:
        use_fused_update(optimizer)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(32, 12)), tf.float32)
    y = tf.constant(rng.integers(0, 3, 32))
    optimizer.build(model.trainable_variables)  # not inside the traced step

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                y, model(x), from_logits=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables),
                        model.trainable_variables)

    for _ in range(steps):
        step()
    ops = [op.type for op in step.get_concrete_function().graph.get_operations()]
    return model.get_weights(), ops


def test_fused_adam_learns_the_same_weights_as_keras_adam_to_rounding():
    keras_weights, keras_ops = _train(fused=False)
    fused_weights, fused_ops = _train(fused=True)
    assert "ResourceApplyAdam" not in keras_ops
    assert fused_ops.count("ResourceApplyAdam") == 4  # one kernel per weight tensor
    for want, got in zip(keras_weights, fused_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # steps of 0.01
    # The update itself repeats bit for bit.
    again, _ = _train(fused=True)
    assert all(np.array_equal(a, b) for a, b in zip(fused_weights, again, strict=True))


def test_other_optimizers_and_amsgrad_are_left_to_keras():
    for optimizer in (keras.optimizers.AdamW(), keras.optimizers.SGD(),
                      keras.optimizers.Adam(amsgrad=True)):
        keras_update = optimizer.update_step
        use_fused_update(optimizer)
        assert optimizer.update_step == keras_update
    _, ops = _train(fused=True, amsgrad=True)
    assert "ResourceApplyAdam" not in ops
