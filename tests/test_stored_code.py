"""Stored code never runs, and reading a model leaves nothing behind: crafted SavedModels
whose loading or scoring would write a file, ONNX external data hidden in a subgraph, zips
that unpack to gigabytes, temporary files of workers and runs, folders that nest deep or link
outside."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnistkit.files import scratch
from mnistkit.read.errors import ModelError
from mnistkit.read.loading import load_model
from mnistkit.score.evaluation import size_on_disk
from mnistkit.workers.process import Worker
from testkit.crafted_code import CRAFTS, crafted_saved_model
from testkit.hostile_code import keras_zip_bomb, onnx_with_branch_bias
from tests.conftest import ROOT
from tests.scratch_tasks import LitteringTasks

# --- SavedModels: what the loader runs is what is checked -----------------------------------

@pytest.mark.parametrize("craft", CRAFTS)
def test_a_saved_model_that_would_write_a_file_is_refused_before_anything_runs(tmp_path,
                                                                                craft):
    marker = tmp_path / "written"
    folder = crafted_saved_model(craft, tmp_path / craft, marker)
    with pytest.raises(ModelError, match="SavedModel uses op WriteFile, which touches the "
                                         "world: refused"):
        load_model(folder)
    assert not marker.exists()


def test_a_saved_model_linking_outside_its_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (tmp_path / "elsewhere").mkdir()
    (folder / "variables" / "variables.index").symlink_to(tmp_path / "elsewhere" / "x")
    with pytest.raises(ModelError, match="'variables/variables.index' is a link to outside "
                                         "its folder: refused"):
        load_model(folder)


def test_a_saved_model_whose_assets_nest_deep_is_read(tmp_path):
    """1,100 nested folders: deeper than Python's recursion limit, well within the bound."""
    import tensorflow as tf

    from testkit.crafted_code import _save  # a small valid SavedModel

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1], name="image")
        mean = tf.reshape(tf.reduce_mean(image, [1, 2, 3]), [-1, 1])
        _save(tmp_path / "model", graph, image, tf.nn.softmax(mean * tf.ones([1, 10])))
    deep = tmp_path / "model" / "assets"
    try:
        for _ in range(1100):  # not os.makedirs: it recurses once a level
            deep = deep / "a"
            deep.mkdir(parents=True)
        model, kind = load_model(tmp_path / "model")
        assert kind == "saved_model"
        assert model.predict_on_batch(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
        assert size_on_disk(tmp_path / "model") > 0
    finally:
        scratch.remove_tree(tmp_path / "model")  # pytest's own clean-up would recurse too deep
    assert not (tmp_path / "model").exists()


# --- ONNX: external data anywhere in the file ------------------------------------------------

def test_onnx_external_data_inside_a_subgraph_must_stay_in_the_model_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(10, np.float32).tobytes())
    path = onnx_with_branch_bias(tmp_path / "model", "../secret.bin")
    with pytest.raises(ModelError, match="external data '../secret.bin' outside the model's "
                                         "folder: refused"):
        load_model(path)


def test_onnx_external_data_inside_a_subgraph_is_read_beside_the_model(tmp_path, monkeypatch):
    """Found beside the model, never in the current folder, wherever the reader runs."""
    path = onnx_with_branch_bias(tmp_path / "model", "bias.bin")
    (tmp_path / "model" / "bias.bin").write_bytes(np.arange(10, dtype=np.float32).tobytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "bias.bin").write_bytes(np.zeros(10, np.float32).tobytes())  # a decoy
    monkeypatch.chdir(elsewhere)
    model, _ = load_model(path)
    probabilities = model.predict_on_batch(np.zeros((1, 28, 28, 1), np.float32))[0]
    assert probabilities.argmax() == 9  # the bias 0..9 read from the model's folder


def test_an_unused_huge_onnx_initializer_does_not_count_as_parameters(tmp_path):
    import onnx

    path = onnx_with_branch_bias(tmp_path / "model", "bias.bin")
    (tmp_path / "model" / "bias.bin").write_bytes(np.zeros(10, np.float32).tobytes())
    model = onnx.load(str(path), load_external_data=False)
    unused = model.graph.initializer.add(name="unused", data_type=onnx.TensorProto.FLOAT)
    unused.dims.extend([3, 2**62])  # declared, never stored: no reader allocates it
    path.write_bytes(model.SerializeToString())
    loaded, _ = load_model(path)
    assert loaded.count_params() == 784 * 10 + 10


# --- .keras zips: bounded in all, not member by member --------------------------------------

@pytest.mark.parametrize("keras_version", ["3.15.1", "2.14.0"])
def test_a_keras_zip_that_unpacks_to_too_much_is_refused_unread(tmp_path, keras_version):
    path = keras_zip_bomb(tmp_path / "bomb.keras", keras_version)
    assert path.stat().st_size < 2**20
    with pytest.raises(ModelError, match=r"the .keras zip unpacks to 285,212,684 bytes; an "
                                         r"MNIST model's to at most 268,435,456"):
        load_model(path)


# --- temporary files: none outlives the worker or the run -----------------------------------

def test_a_worker_keeps_its_temporary_files_in_a_folder_removed_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    worker = Worker(LitteringTasks, timeout=3, reader="test reader")
    try:
        folder = Path(worker.call(LitteringTasks.litter, False))
        assert folder.parent == tmp_path and list(folder.glob("*.unpacked"))
        with pytest.raises(ModelError, match="no answer in 3 s"):
            worker.call(LitteringTasks.litter, True)  # killed by its time limit, files and all
        assert not folder.exists()
        replacement = Path(worker.call(LitteringTasks.temporary_folder))
        assert replacement != folder and replacement.is_dir()
    finally:
        worker.close()
    assert not replacement.exists()
    assert [path.name for path in tmp_path.iterdir()] == []


def test_a_scratch_folder_whose_process_is_gone_is_removed_by_the_next(tmp_path):
    from mnistkit.files import scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = tmp_path / f"{scratch.PREFIX}{gone}-abc"
    orphan.mkdir()
    (orphan / "left.py").write_text("")
    mine = tmp_path / f"{scratch.PREFIX}{os.getpid()}-abc"
    mine.mkdir()
    scratch.remove_orphans(tmp_path)
    assert not orphan.exists() and mine.exists()


@pytest.mark.slow
def test_a_training_run_and_an_evaluation_leave_no_temporary_files(tmp_path, medium_npz):
    """TensorFlow's autograph writes a module per traced function; ONNX Runtime and Keras
    unpack files: all of it goes with the process that made it."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary), "TF_CPP_MIN_LOG_LEVEL": "2"}
    model = tmp_path / "logreg.h5"
    trained = subprocess.run(
        [sys.executable, str(ROOT / "train_logreg.py"), "--epochs", "1", "--no-plot",
         "--data", str(medium_npz), "--output", str(model)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    assert list(temporary.iterdir()) == []
    scored = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(model), "--data", str(medium_npz)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr
    assert list(temporary.iterdir()) == []


@pytest.mark.parametrize("name", ["w.weights.h5", "w.h5"])
def test_a_weights_only_file_says_what_would_make_it_readable(tmp_path, name):
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    model.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(tmp_path / name)
    with pytest.raises(ModelError, match=r"holds weights only, no architecture \(saved with "
                                         r"save_weights\): .*load_weights\(\).*model.save\(\)"):
        load_model(tmp_path / name)
