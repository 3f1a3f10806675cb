"""Fused batch normalisation trains like Keras' own, and what is saved is Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistkit.read.loading import load_model_file
from mnistkit.train import precision, speedups
from mnistkit.train.fused_norm import FusedBatchNormalization
from mnistkit.train.training import train_and_evaluate
from tests.conftest import training_config


def test_training_step_matches_keras_batch_normalization():
    x = tf.constant(np.random.default_rng(0).normal(2, 3, (16, 7, 7, 5)).astype(np.float32))
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 5))
        layer.beta.assign(np.linspace(-1, 1, 5))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = [layer(x, training=True) for layer in (plain, fused)]
        losses = [tf.reduce_sum(y * tf.sin(y)) for y in outputs]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(plain, name), getattr(fused, name), rtol=1e-5)
    grads = [tape.gradient(loss, [x, layer.gamma, layer.beta])
             for loss, layer in zip(losses, (plain, fused), strict=True)]
    for want, got in zip(*grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(want)))
    np.testing.assert_allclose(plain(x), fused(x), rtol=1e-5, atol=1e-6)  # Keras' own code


def test_bfloat16_activations_normalise_as_keras_does():
    # Under mixed_bfloat16 the fused kernel takes the bfloat16 activations as they are (no
    # cast to float32): the same outputs and moving statistics as Keras' own layer.
    x = tf.constant(np.random.default_rng(1).normal(2, 3, (32, 6, 6, 8)), tf.bfloat16)
    plain = keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    fused = FusedBatchNormalization(dtype="mixed_bfloat16")
    outputs = []
    for layer in (plain, fused):
        layer.build(x.shape)
        outputs.append(layer(x, training=True))
    assert outputs[1].dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(outputs[0], tf.float32), tf.cast(outputs[1], tf.float32),
                               atol=0.02)  # bfloat16 holds 3 significant digits
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(plain, name), getattr(fused, name), rtol=1e-5)


def test_copy_has_the_same_weights_and_models_without_batch_norm_are_left_alone():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    copy = precision.training_copy(model, "float32", speedups.layer_class)
    assert copy is not model and speedups.swapped(copy) and not speedups.swapped(model)
    assert all(np.array_equal(a, b)
               for a, b in zip(model.get_weights(), copy.get_weights(), strict=True))
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert precision.training_copy(plain, "float32", speedups.layer_class) is plain
    back = precision.plain_copy(copy, copy.get_weights(), speedups.plain_class)
    assert not speedups.swapped(back)
    assert [layer.name for layer in back.layers] == [layer.name for layer in model.layers]


def test_the_speedups_off_train_with_keras_own_layers(monkeypatch):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.BatchNormalization()])
    monkeypatch.setenv("MNISTKIT_SPEEDUPS", "0")
    assert precision.training_copy(model, "float32", speedups.layer_class) is model
    monkeypatch.setattr(speedups, "WRITTEN_FOR", "2.")  # another Keras than they were for
    monkeypatch.delenv("MNISTKIT_SPEEDUPS")
    assert not speedups.enabled()


def test_mixed_precision_is_a_copy_not_a_global_setting():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    copy = precision.training_copy(model, "mixed_bfloat16", speedups.layer_class)
    assert keras.config.dtype_policy().name == "float32"
    assert [layer.dtype_policy.name for layer in copy.layers] == ["mixed_bfloat16", "float32"]
    back = precision.plain_copy(copy, copy.get_weights(), speedups.plain_class)
    assert {layer.dtype_policy.name for layer in back.layers} == {"float32"}


@pytest.mark.parametrize("arch", ["fast", "modern"])
def test_trained_models_are_saved_with_keras_own_layers(small_mnist, tmp_path, arch):
    module, config = training_config("train_cnn", "--arch", arch, "--epochs", "1", "--quiet",
                                     "--no-plot", "--output", str(tmp_path / "m.h5"))
    record = train_and_evaluate(module.build_model, config, small_mnist)
    saved = load_model_file(tmp_path / "m.h5")  # safe mode: no custom classes
    kinds = {type(layer).__name__ for layer in saved.layers}
    assert "BatchNormalization" in kinds and "FusedBatchNormalization" not in kinds
    assert saved.count_params() == record["params"]
