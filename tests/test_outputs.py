"""Outputs are written whole, to plain files only, or not at all: a bad output path is one
line naming it, before any work, and nothing that was there is lost."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(script, *argv, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def one_error_line(result, *words):
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[-1]


@pytest.fixture
def targets(tmp_path):
    """Paths that must never be replaced by a JSON file."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "target.json").write_text("keep me too")
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    os.mkfifo(tmp_path / "fifo.json")
    return {"a folder": tmp_path / "folder", "below a file": tmp_path / "file" / "x.json",
            "a symbolic link": tmp_path / "link.json", "a FIFO": tmp_path / "fifo.json",
            "a device": "/dev/null"}


@pytest.mark.parametrize("kind", ["a folder", "below a file", "a symbolic link", "a FIFO",
                                  "a device"])
def test_evaluate_refuses_a_json_path_that_is_not_a_plain_file(targets, tmp_path, kind):
    result = run("evaluate.py", tmp_path / "any.h5", "--json", targets[kind])
    assert result.returncode == 2
    one_error_line(result, "--json", str(targets[kind]))
    assert (tmp_path / "target.json").read_text() == "keep me too"
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "file").read_text() == "keep me"


def test_training_refuses_outputs_it_could_not_publish_whole(tmp_path, medium_npz):
    (tmp_path / "m.h5").write_text("the good model")
    (tmp_path / "m.json").mkdir()  # the record's path is taken by a folder
    result = run("train_logreg.py", "--epochs", "1", "--data", medium_npz,
                 "--output", tmp_path / "m.h5")
    assert result.returncode == 1
    one_error_line(result, str(tmp_path / "m.json"), "is a folder")
    assert (tmp_path / "m.h5").read_text() == "the good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json"]
