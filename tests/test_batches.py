"""An epoch's batches as fit gets them: every image once, in the epoch's order, the last
batch short, the same whether the arrays are NumPy ones or JAX ones on a device; on
TensorFlow scaled in the pipeline to exactly the floats scale_pixels gives."""

import numpy as np
import pytest

from mnistkit.prepare.batches import _EpochCut, epoch_order
from tests.conftest import needs


@pytest.mark.parametrize("on", ["numpy", pytest.param("jax", marks=needs("jax"))])
@pytest.mark.parametrize("count", [1000, 1024, 100])
def test_an_epoch_cut_holds_every_image_once_in_its_order(on, count):
    images = np.arange(count * 4, dtype=np.float32).reshape(count, 2, 2)
    labels = np.arange(count, dtype=np.int32)
    order = epoch_order(7, 3, count)
    if on == "jax":
        import jax

        images, labels = jax.device_put(images), jax.device_put(labels)
    cut = _EpochCut(images, labels, order, 128)
    batches = [cut[index] for index in range(-(-count // 128))]
    seen_images = np.concatenate([np.asarray(batch[0]) for batch in batches])
    seen_labels = np.concatenate([np.asarray(batch[1]) for batch in batches])
    assert [len(batch[1]) for batch in batches][:-1] == [128] * (len(batches) - 1)
    assert len(batches[-1][1]) == count - 128 * (len(batches) - 1)
    np.testing.assert_array_equal(seen_labels, order)
    np.testing.assert_array_equal(seen_images, np.asarray(images)[order])


def test_tensorflow_batches_are_the_scaled_images_to_the_last_bit():
    # The training images stay uint8 and TensorFlow scales each batch in its pipeline: the
    # floats must be exactly those scale_pixels gives, or a run would not repeat the old ones.
    import tensorflow as tf  # noqa: F401  (the pipeline is TensorFlow's)

    from mnistkit.prepare.batches import ShuffledBatches
    from mnistkit.prepare.pixels import scale_pixels

    images = np.arange(300 * 28 * 28, dtype=np.int64).reshape(300, 28, 28, 1) % 256
    images = images.astype(np.uint8)
    labels = np.arange(300, dtype=np.int32) % 10
    batches = ShuffledBatches(images, labels, 128, seed=5, first_epoch=2)
    seen = list(batches.fit_arguments()["x"])
    assert [len(batch_labels) for _, batch_labels in seen] == [128, 128, 44]
    order = epoch_order(5, 2, 300)
    got = np.concatenate([batch_images.numpy() for batch_images, _ in seen])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, scale_pixels(images[order]))
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in seen]), labels[order])
    np.testing.assert_array_equal(batches.scaled(3), scale_pixels(images[:3]))


def test_validation_batches_are_the_scaled_images_in_order():
    # The validation images stay uint8 too: TensorFlow scales each batch of the held-out
    # images, in their order, to exactly the floats scale_pixels gives.
    from mnistkit.prepare.batches import validation_arguments
    from mnistkit.prepare.pixels import scale_pixels

    images = (np.arange(250 * 28 * 28) % 256).astype(np.uint8).reshape(250, 28, 28, 1)
    labels = np.arange(250, dtype=np.int32) % 10
    arguments = validation_arguments((images, labels), batch_size=100)
    seen = list(arguments["validation_data"])
    assert [len(batch_labels) for _, batch_labels in seen] == [100, 100, 50]
    got = np.concatenate([batch_images.numpy() for batch_images, _ in seen])
    assert got.dtype == np.float32 and np.array_equal(got, scale_pixels(images))
    assert np.array_equal(np.concatenate([answers for _, answers in seen]), labels)
    assert validation_arguments(None, 100) == {"validation_data": None}
