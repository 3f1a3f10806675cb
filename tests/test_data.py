"""The MNIST loader: real data, and hostile files that must each give the loader's own error."""

import gzip
import hashlib
import io
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistkit.files.data import DataError, load_mnist
from mnistkit.prepare.inputs import layout_for, prepare_images

FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # each example rewrites the same files
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, n_train=20, n_test=10, gz=True, override=None):
    """A folder of four valid little IDX files; ``override`` maps a name to other bytes."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)]
    for name, array in zip(NAMES, arrays, strict=True):
        data = (override or {}).get(name, idx_bytes(array))
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 20, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 10, dtype=np.uint8)}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# --- real data ---------------------------------------------------------------------------

def test_real_mnist_has_the_published_shapes_and_counts(mnist):
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == np.uint8
    assert np.bincount(mnist.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_mnist_labels_match_the_published_checksum(mnist):
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 10000)
    digest = hashlib.sha256(header + mnist.test_labels.tobytes()).hexdigest()
    assert digest == "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"


# --- formats -----------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_folders_gzipped_or_not(tmp_path, gz):
    data = load_mnist(write_idx_folder(tmp_path, gz=gz))
    assert data.train_images.shape == (20, 28, 28) and data.test_labels.shape == (10,)


def test_reads_keras_npz_as_file_and_in_folder(tmp_path):
    write_npz(tmp_path / "mnist.npz")
    assert load_mnist(tmp_path / "mnist.npz").train_images.shape == (20, 28, 28)
    assert load_mnist(tmp_path).test_images.shape == (10, 28, 28)


def test_environment_variable_points_at_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", str(write_idx_folder(tmp_path)))
    assert len(load_mnist().train_labels) == 20


def test_keras_download_cache_is_used_when_no_path_is_given(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    write_npz(tmp_path / "datasets" / "mnist.npz")
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    mnist = load_mnist()
    assert mnist.source == str(tmp_path / "datasets" / "mnist.npz")
    assert len(mnist.test_labels) == 10


def test_failed_download_says_how_to_use_local_files(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached download there
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match=r"could not download MNIST.*--data.*MNIST_DATA"):
        load_mnist()


@pytest.mark.parametrize("shape,layout", [
    ((784,), (784,)), ((28, 28), (28, 28)), ((28, 28, 1), (28, 28, 1)),
    ((1, 28, 28), (1, 28, 28)), ((None, None, 1), (28, 28, 1)), ((None,), (784,))])
def test_prepare_images_fits_every_mnist_layout(shape, layout):
    images = np.full((3, 28, 28), 255, np.uint8)
    prepared = prepare_images(images, shape)
    assert prepared.shape == (3, *layout) and prepared.dtype == np.float32
    assert prepared.max() == 1.0
    assert layout_for(shape) == layout


def test_prepare_images_pads_to_32_and_repeats_grey_in_3_channels():
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    rgb = prepare_images(images, (28, 28, 3), "0-255")
    assert rgb.shape == (2, 28, 28, 3) and np.array_equal(rgb[..., 2], images)
    first = prepare_images(images, (3, 32, 32), "0-1")
    assert first.shape == (2, 3, 32, 32) and np.array_equal(first[:, 1, 2:30, 2:30] * 255, images)
    assert first[:, :, :2].max() == 0 and first[:, :, 30:].max() == 0  # black border of 2


def test_prepare_images_pixel_scales():
    images = np.full((1, 28, 28), 255, np.uint8)
    assert prepare_images(images, (784,), "0-255").max() == 255
    assert prepare_images(images, (784,), "standardised").max() == pytest.approx(
        (1 - 0.1307) / 0.3081)
    columns = prepare_images(images, (28, 28), "normalize")  # keras.utils.normalize(x, axis=1)
    assert np.allclose(np.square(columns).sum(axis=1), 1)
    with pytest.raises(ValueError, match="unknown pixel scale"):
        prepare_images(images, (784,), "0-2")


@pytest.mark.parametrize("shape", [(32, 32, 2), (28, 28, 4), (785,), (28,), (1, 1, 28, 28),
                                   (30, 30, 1)])
def test_prepare_images_refuses_other_inputs(shape):
    with pytest.raises(ValueError, match="does not take 28x28"):
        layout_for(shape)


# --- hostile files: each must give a DataError naming the file ---------------------------

GOOD_IMAGES = idx_bytes(np.zeros((20, 28, 28)))
HOSTILE_IDX = {
    "wrong magic": b"\x01\x02" + GOOD_IMAGES[2:],
    "wrong type byte": GOOD_IMAGES[:2] + b"\x0d" + GOOD_IMAGES[3:],
    "wrong dimension count": GOOD_IMAGES[:3] + b"\x02" + GOOD_IMAGES[4:],
    "images not 28x28": idx_bytes(np.zeros((20, 27, 29))),
    "truncated data": GOOD_IMAGES[:-100],
    "truncated header": GOOD_IMAGES[:6],
    "empty file": b"",
    "extra bytes": GOOD_IMAGES + b"\0" * 7,
    "header claims billions": GOOD_IMAGES[:4] + struct.pack(">I", 4_000_000_000)
    + GOOD_IMAGES[8:],
}


@pytest.mark.parametrize("case", HOSTILE_IDX)
def test_hostile_idx_files_give_a_clear_error(tmp_path, case):
    write_idx_folder(tmp_path, override={NAMES[0]: HOSTILE_IDX[case]})
    with pytest.raises(DataError, match="train-images"):
        load_mnist(tmp_path)


def test_image_and_label_counts_must_match(tmp_path):
    write_idx_folder(tmp_path, override={NAMES[0]: idx_bytes(np.zeros((19, 28, 28)))})
    with pytest.raises(DataError, match="19 training images but 20 labels"):
        load_mnist(tmp_path)


def test_labels_outside_0_to_9_are_refused(tmp_path):
    write_idx_folder(tmp_path, override={NAMES[3]: idx_bytes(np.full(10, 10))})
    with pytest.raises(DataError, match="labels range 10..10, expected 0-9"):
        load_mnist(tmp_path)


def test_corrupt_gzip_stream_is_refused(tmp_path):
    write_idx_folder(tmp_path)
    broken = bytearray((tmp_path / f"{NAMES[2]}.gz").read_bytes())
    broken[30:60] = b"\xff" * 30
    (tmp_path / f"{NAMES[2]}.gz").write_bytes(bytes(broken))
    with pytest.raises(DataError, match="t10k-images"):
        load_mnist(tmp_path)


def test_missing_file_is_named(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / f"{NAMES[1]}.gz").unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize("overrides,message", [
    ({"y_test": None}, "no array 'y_test'"),
    ({"x_train": np.zeros((20, 28, 28), np.float32)}, "dtype float32"),
    ({"x_train": np.zeros((20, 28), np.uint8)}, "expected 3 dimensions"),
    ({"x_train": np.zeros((20, 32, 32), np.uint8)}, "expected 28x28"),
    ({"y_train": np.full(20, 12, np.uint8)}, "labels range"),
    ({"y_train": np.zeros(21, np.uint8)}, "20 training images but 21 labels"),
])
def test_hostile_npz_files_give_a_clear_error(tmp_path, overrides, message):
    with pytest.raises(DataError, match=message):
        load_mnist(write_npz(tmp_path / "mnist.npz", **overrides))


def test_npz_with_forged_shape_does_not_allocate_it(tmp_path):
    write_npz(tmp_path / "real.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (250_000, 28, 28)})
    with zipfile.ZipFile(tmp_path / "real.npz") as real, \
            zipfile.ZipFile(tmp_path / "mnist.npz", "w") as forged:
        for name in real.namelist():
            forged.writestr(name, header.getvalue() + b"\0" * 100 if name == "x_test.npy"
                            else real.read(name))
    with pytest.raises(DataError, match="truncated"):
        load_mnist(tmp_path / "mnist.npz")


def test_pickled_npz_is_never_unpickled(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.array([object()]), y_train=np.zeros(1),
             x_test=np.zeros(1), y_test=np.zeros(1))
    with pytest.raises(DataError, match="dtype object"):
        load_mnist(tmp_path / "mnist.npz")


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.binary(max_size=3000), gz=st.booleans())
def test_fuzzed_idx_bytes_never_crash_the_loader(tmp_path, data, gz):
    write_idx_folder(tmp_path, gz=False, override={NAMES[0]: gzip.compress(data) if gz else data})
    with pytest.raises(DataError):
        load_mnist(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(position=st.integers(0, 20 * 784 + 15), value=st.integers(0, 255),
       cut=st.integers(0, 20 * 784 + 16))
def test_fuzzed_idx_headers_and_lengths_never_crash_the_loader(tmp_path, position, value, cut):
    data = bytearray(GOOD_IMAGES)
    data[position] = value
    data = bytes(data[:cut]) if cut < len(data) else bytes(data)
    write_idx_folder(tmp_path, gz=False, override={NAMES[0]: data})
    try:
        loaded = load_mnist(tmp_path)
    except DataError as error:
        assert "train-images" in str(error)
    else:  # a change in the pixels is still a valid file
        assert loaded.train_images.shape == (20, 28, 28)


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.binary(max_size=2000))
def test_fuzzed_npz_bytes_never_crash_the_loader(tmp_path, data):
    (tmp_path / "mnist.npz").write_bytes(data)
    with pytest.raises(DataError):
        load_mnist(tmp_path / "mnist.npz")

