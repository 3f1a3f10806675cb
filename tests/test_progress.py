"""What a user sees while waiting: the epoch progress bar never counts past the epoch's
steps, --corruptions says it is building its sets, --show draws every digit of a number and
says where it wrote, and the reliability diagram gives each bin's count of images."""

import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, save_npz


@pytest.fixture(scope="module")
def few_npz(tmp_path_factory, mnist):
    """3,000 training images: 19 steps an epoch at batch 128, fewer than the 64 steps Keras
    runs a call (the case that showed 64/19)."""
    path = tmp_path_factory.mktemp("few") / "mnist.npz"
    save_npz(mnist.subset(3000, 1000), path)
    return path


def run_in_terminal(argv: list[str], cwd) -> str:
    """What ``argv`` prints on a terminal (a pseudo-terminal as stdout and stderr)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=follower, env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process closed the terminal: all is read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    shown = b"".join(chunks).decode(errors="replace")
    assert process.wait(timeout=300) == 0, shown
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", shown)  # Keras' colours and bold


def test_the_epoch_progress_bar_never_counts_past_the_epochs_steps(few_npz, tmp_path):
    command = [sys.executable, str(ROOT / "train_logreg.py"), "--epochs", "2", "--no-plot",
               "--data", str(few_npz), "--output", str(tmp_path / "m.h5")]
    shown = run_in_terminal(command, tmp_path)
    counts = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+) ", shown)
              if total == "19"]
    assert counts and all(done <= total for done, total in counts), shown
    assert (19, 19) in counts
    # In a log (no terminal): one line per epoch, as before
    logged = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert logged.returncode == 0, logged.stderr
    assert re.findall(r"^(\d+)/19 - ", logged.stdout, re.M) == ["19", "19"], logged.stdout


def test_building_the_corrupted_sets_is_said_and_counted_on_a_terminal(
        mnist, tmp_path, monkeypatch, capsys):
    from mnistkit.prepare.corruption_cache import cached_corruptions
    from mnistkit.prepare.corruptions import CORRUPTIONS
    from mnistkit.score.corrupted import building_progress

    monkeypatch.setenv("MNISTKIT_CACHE", str(tmp_path))
    heard = []
    cached_corruptions(mnist.test_images[:5], lambda built, name: heard.append((built, name)))
    assert heard == [*enumerate(CORRUPTIONS), (15, None)]

    for built, name in heard:  # in a log: the line that it started, no counter
        building_progress(built, name)
    out, err = capsys.readouterr()
    assert out == "building the 15 corrupted test sets of MNIST-C (once: then cached)\n"
    assert err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for built, name in heard:
        building_progress(built, name)
    _, err = capsys.readouterr()
    assert err.startswith("\r  0 of 15 built, now shot noise")
    assert "\r  6 of 15 built, now rotate" in err and err.endswith("\r  15 of 15 built\033[K\n")


def test_show_draws_every_digit_of_a_number(tmp_path, mnist):
    from PIL import Image

    from mnistkit.report.readings import show

    digits = mnist.test_images[:4]
    probabilities = np.eye(10)[mnist.test_labels[:4]]
    four = show("year.png", digits, probabilities, f"{tmp_path}/")
    one = show("seven.png", digits[:1], probabilities[:1], f"{tmp_path}/")
    assert (four, one) == (f"{tmp_path}/year.png", f"{tmp_path}/seven.png")
    with Image.open(four) as number, Image.open(one) as single:
        assert number.width >= 4 * 250 > single.width  # a column per digit


def test_the_reliability_diagram_gives_each_bins_count(monkeypatch, tmp_path):
    from mnistkit.report import plots

    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.update(figure=figure))
    counts = np.array([0] * 12 + [3, 40, 9957])
    confidence = np.linspace(0.03, 0.97, 15)
    accuracy = np.where(counts > 0, [0] * 12 + [0.33, 0.8, 0.995], 0)
    plots.reliability_diagram({"cnn.h5": (counts, confidence, accuracy)}, tmp_path / "r.png")
    top, below = drawn["figure"].axes
    assert below.get_yscale() == "log" and "images" in below.get_ylabel()
    assert [text.get_text() for text in below.texts] == ["3", "40", "9,957"]
    plots._pyplot().close(drawn["figure"])
