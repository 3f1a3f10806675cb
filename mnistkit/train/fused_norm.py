"""Batch normalisation through TensorFlow's fused kernel while training.

Keras 3 normalises a training batch with a chain of separate operations (mean, variance,
scale and shift, and as many again for the gradients), each a pass over the activations; on
a 2-core CPU that made a quarter of the modern CNN's training step. TensorFlow's
FusedBatchNormV3 does the same arithmetic in one pass each way. The model that trains has
its ``BatchNormalization`` layers computing that way (same variables, same results to float
rounding; :mod:`mnistkit.train.speedups`); the weights it learns go back into Keras' own
layers, which is what is tested and saved, so files hold plain Keras layers.
"""

from __future__ import annotations

import keras


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``BatchNormalization`` whose training step runs TensorFlow's fused kernel where it
    applies (4-D inputs normalised over the last axis, with scale and offset); everything
    else, inference included, is Keras' own code."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs) and mask is None):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # The kernel takes bfloat16 and float16 activations as they are and computes the
        # statistics in float32, as Keras does; casting the activations to float32 first
        # gave the same numbers to the last bit, and took a quarter of the modern CNN's
        # bfloat16 epoch (18.6 s against 13.4 s).
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32"),
            epsilon=self.epsilon, is_training=True)
        # The kernel normalises by the batch's variance but returns it with Bessel's
        # correction; Keras' moving variance averages the uncorrected one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
        variance = variance * (count - 1) / count
        self.moving_mean.assign(self.moving_mean * self.momentum
                                + mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1 - self.momentum))
        return tf.cast(y, self.compute_dtype)  # no-op: Keras hands inputs in that dtype

    def _fusable(self, inputs) -> bool:
        rank = len(inputs.shape)
        return (rank == 4 and self.axis in (-1, rank - 1) and self.center and self.scale
                and not self.renorm and not self.synchronized)
