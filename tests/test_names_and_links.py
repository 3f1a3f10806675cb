"""Paths that say too much or point elsewhere, given to the real scripts: a name longer than
the file system takes is one line naming it (before any work, the other models still
scored), and a report never writes through a symbolic link at one of its names."""

import json
import shutil

import pytest

from testkit import hostile as sweep

LONG = "x" * 260  # one name over the 255 bytes that Linux file systems take


@pytest.fixture(scope="module")
def kit(tmp_path_factory, mnist):
    """A logistic regression trained by train_logreg.py (one epoch on 2,000 images), and
    its score."""
    return sweep.make_kit(tmp_path_factory.mktemp("names"), ("logreg.h5",), timeout=180)


def evaluate(kit, *argv, models=()):
    return sweep.run(["evaluate.py", str(kit.models["logreg.h5"]), *map(str, models),
                      "--data", str(kit.data), *map(str, argv)], kit.timeout)


def one_error_line(done, code, *words):
    assert done.code == code, done.text[-2000:]
    assert "Traceback" not in done.text, done.text[-2000:]
    lines = sweep.error_lines(done.err)
    assert len(lines) == 1 and done.err.strip().splitlines()[-1] == lines[0], done.err
    for word in words:
        assert word in lines[0], lines[0]


def test_a_report_never_writes_through_a_symbolic_link(kit, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep me")
    report = tmp_path / "report"
    report.mkdir()
    links = [report / "logreg_confusion.png", report / "comparison.png"]
    for link in links:
        link.symlink_to(outside)
    done = evaluate(kit, "--report", report)
    one_error_line(done, 2, "symbolic link", str(report))
    assert outside.read_bytes() == b"keep me"
    assert sorted(report.iterdir()) == sorted(links)  # nothing written, nothing left over
    assert all(link.is_symlink() for link in links)


@pytest.mark.parametrize("flag", ["--json", "--report"])
def test_evaluate_refuses_an_output_name_too_long_before_scoring(kit, tmp_path, flag):
    target = tmp_path / (LONG + (".json" if flag == "--json" else ""))
    done = evaluate(kit, flag, target)
    one_error_line(done, 2, flag, str(target), "name too long")
    assert "test images" not in done.out  # refused before anything was scored


def test_a_model_name_too_long_gets_its_own_row_and_the_others_are_scored(kit, tmp_path):
    rows = tmp_path / "rows.json"
    done = evaluate(kit, "--json", rows, models=[tmp_path / f"{LONG}.h5"])
    assert done.code == 1 and "Traceback" not in done.text, done.text[-2000:]
    found = {row["file"]: row for row in json.loads(rows.read_text())["models"]}
    assert found[str(kit.models["logreg.h5"])]["accuracy"] == kit.accuracy["logreg.h5"]
    assert "name too long" in found[str(tmp_path / f"{LONG}.h5")]["error"]


def test_draw_refuses_a_model_name_too_long(kit, tmp_path):
    done = sweep.run(["draw.py", "--model", str(tmp_path / f"{LONG}.h5"), "--port", "0"],
                     kit.timeout)
    one_error_line(done, 2, "--model", str(tmp_path / f"{LONG}.h5"), "name too long")


def test_export_refuses_names_too_long_before_any_work(kit, tmp_path):
    done = sweep.run(["export.py", str(tmp_path / f"{LONG}.h5")], kit.timeout)
    one_error_line(done, 1, str(tmp_path / f"{LONG}.h5"), "name too long")

    model = tmp_path / ("m" * 250 + ".h5")  # 253 bytes: its _savedmodel folder would be 261
    shutil.copy(kit.models["logreg.h5"], model)
    done = sweep.run(["export.py", str(model), "--data", str(kit.data)], kit.timeout)
    one_error_line(done, 1, f"{model.stem}_savedmodel", "name too long")
    assert "exporting" not in done.out  # refused before the model was even loaded
    assert sorted(tmp_path.iterdir()) == [model]


def test_export_with_a_long_name_that_fits_writes_it(kit, tmp_path):
    model = tmp_path / ("m" * 244 + ".h5")  # its _float.onnx is 255 bytes, the most there is
    shutil.copy(kit.models["logreg.h5"], model)
    done = sweep.run(["export.py", str(model), "--formats", "onnx", "--data", str(kit.data)],
                     kit.timeout)
    assert done.code == 0, done.text[-2000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        model.name, f"{model.stem}_float.onnx"]


def test_training_refuses_an_output_whose_checkpoint_name_is_too_long(kit, tmp_path):
    output = tmp_path / ("t" * 250 + ".h5")  # the model fits; its NAME.ckpt.npz would not
    done = sweep.run(["train_logreg.py", "--epochs", "1", "--quiet", "--no-plot", "--data",
                      str(kit.data), "--output", str(output)], kit.timeout)
    one_error_line(done, 1, f"{output.stem}.ckpt.npz", "name too long")
    assert list(tmp_path.iterdir()) == []
