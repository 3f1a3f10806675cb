"""An epoch's batches, as fit gets them on the backends other than TensorFlow: every image
once, in the epoch's order, the last batch short, the same whether the arrays are NumPy
ones or JAX ones on a device."""

import numpy as np
import pytest

from mnistkit.prepare.batches import _EpochCut, epoch_order


@pytest.mark.parametrize("on", ["numpy", "jax"])
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
