"""Models as PyTorch users export them: trained on pixels in [-1, 1]
(``transforms.Normalize((0.5,), (0.5,))``), written by ``torch.onnx.export``, with the weights
in a ``.onnx.data`` file beside the graph as PyTorch's exporter writes them."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import save_npz
from tests.test_legacy import evaluate_json

torch = pytest.importorskip("torch", reason="PyTorch is installed by requirements-dev.txt "
                                            "(the full lane); the quick lane can run without it")


@pytest.fixture(scope="module")
def pytorch_export(tmp_path_factory, small_mnist):
    """A small MLP trained by PyTorch on [-1, 1] pixels, exported with its weights in
    mnist.onnx.data; and its accuracy on the small test set, as PyTorch computes it."""
    import onnx

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))

    def centred(images: np.ndarray) -> torch.Tensor:
        return (torch.tensor(images, dtype=torch.float32)[:, None] / 255 - 0.5) / 0.5

    images, labels = centred(small_mnist.train_images), torch.tensor(small_mnist.train_labels)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(5):
        for start in range(0, len(images), 64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[start:start + 64]),
                                                     labels[start:start + 64].long())
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = model(centred(small_mnist.test_images)).argmax(1).numpy()
    accuracy = float((predicted == small_mnist.test_labels).mean())
    folder = tmp_path_factory.mktemp("pytorch")
    plain = folder / "plain.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(plain), dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    exported = folder / "export"
    exported.mkdir()
    onnx.save_model(onnx.load(str(plain)), str(exported / "mnist.onnx"),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location="mnist.onnx.data", size_threshold=0)
    plain.unlink()
    return exported, accuracy


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, small_mnist) -> Path:
    data = tmp_path_factory.mktemp("data") / "small.npz"
    save_npz(small_mnist, data)
    return data


def test_pytorch_pixels_in_minus_one_to_one_are_found_and_fed(pytorch_export, small_npz,
                                                              tmp_path):
    folder, accuracy = pytorch_export
    data = small_npz
    assert (folder / "mnist.onnx.data").stat().st_size > 784 * 32 * 4  # the weights are there
    rows, _ = evaluate_json(tmp_path, folder / "mnist.onnx", "--data", data, codes=(0,))
    row = rows["mnist.onnx"]
    assert row["error"] is None, row["error"]
    assert row["input_scale"] == "centred", row["scale_accuracies"]
    assert row["accuracy"] == accuracy  # the same images read as PyTorch reads them
    assert row["params"] == 784 * 32 + 32 + 32 * 10 + 10
    forced, _ = evaluate_json(tmp_path, folder / "mnist.onnx", "--data", data,
                              "--pixels", "centred", codes=(0,))
    assert forced["mnist.onnx"]["accuracy"] == accuracy


def test_scale_centred_is_pytorchs_normalize_half_half():
    from mnistkit.prepare.pixels import scale_pixels

    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    expected = (images.astype(np.float32) / 255 - np.float32(0.5)) / np.float32(0.5)
    np.testing.assert_allclose(scale_pixels(images, "centred"), expected, atol=1e-6)
    scaled = scale_pixels(images, "centred")
    assert scaled.min() == -1 and scaled.max() == 1


def test_a_folder_with_an_onnx_data_file_gives_the_model_one_row(pytorch_export, small_npz,
                                                                 tmp_path):
    folder, _ = pytorch_export
    data = small_npz
    rows, printed = evaluate_json(tmp_path, folder, "--data", data, codes=(0,))
    assert sorted(rows) == ["mnist.onnx"]  # the data file belongs to its model
    assert "mnist.onnx.data" in printed and "skipped" in printed
    assert Path(rows["mnist.onnx"]["file"]).parent == folder
