"""MNIST-C's corruptions (mnistkit.prepare.corruptions): each deterministic, each changing
real test digits the way its name says, and the cache rebuilt when it is not right."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from mnistkit.files.data import Mnist
from mnistkit.prepare import corruption_cache as corruptions
from mnistkit.prepare.corruptions import CORRUPTIONS, corrupt
from tests.conftest import ROOT

COUNT = 200  # real test digits: enough for averages, fast for every corruption


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.test_images[:COUNT]


@pytest.fixture(scope="module")
def corrupted(digits):
    return {name: corrupt(name, digits) for name in CORRUPTIONS}


def ink(images):
    return images.astype(float).sum(axis=(1, 2))


def centre_of_mass(images):
    weights = images.astype(float)
    rows, cols = np.mgrid[0:28, 0:28]
    total = weights.sum(axis=(1, 2))
    return np.stack([(weights * rows).sum(axis=(1, 2)) / total,
                     (weights * cols).sum(axis=(1, 2)) / total], axis=1)


def test_there_are_the_papers_fifteen():
    assert list(CORRUPTIONS) == [
        "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
        "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag",
        "canny_edges"]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_is_deterministic_and_changes_the_images(name, digits, corrupted):
    again = corrupt(name, digits)
    assert again.dtype == np.uint8 and again.shape == digits.shape
    assert np.array_equal(again, corrupted[name])  # the same seed, the same images
    changed = np.mean(np.any(again != digits, axis=(1, 2)))
    assert changed > 0.9, f"{name} left {1 - changed:.0%} of the digits as they were"


def test_noise_only_where_its_name_says(digits, corrupted):
    shot = corrupted["shot_noise"]
    assert np.all(shot[digits == 0] == 0)  # no light, no photons: the background stays black
    assert set(np.unique(shot)) <= {0, 85, 170, 255}  # counts of 0-3 photons out of 3
    impulse = corrupted["impulse_noise"]
    hit = impulse != digits
    assert 0.10 < hit.mean() < 0.17  # 17% replaced; some by the value they already had
    assert set(np.unique(impulse[hit])) <= {0, 255}  # salt or pepper, nothing between


def test_blurs_spread_the_ink_but_keep_it(digits, corrupted):
    for name in ("glass_blur", "motion_blur"):
        blurred = corrupted[name]
        assert np.median(ink(blurred) / ink(digits)) == pytest.approx(1, abs=0.1), name
        assert np.mean((blurred > 0).sum(axis=(1, 2)) > (digits > 0).sum(axis=(1, 2))) > 0.9
        # dimmer peaks; the glass blur's only by about 11 levels, as it blurs vertically
        assert blurred.max(axis=(1, 2)).mean() < digits.max(axis=(1, 2)).mean() - 5, name


def test_geometric_ones_move_the_ink_as_named(digits, corrupted):
    # Turned or slanted about the centre: rotation keeps the ink; the paper's shear also
    # stretches the digit vertically by 1 / cos(0.4), about 9%.
    for name, stretch in (("rotate", 1.0), ("shear", 1 / np.cos(0.4))):
        ratio = ink(corrupted[name]) / ink(digits)
        assert np.median(ratio) == pytest.approx(stretch, abs=0.03), name
        moved = np.abs(centre_of_mass(corrupted[name]) - centre_of_mass(digits)).max(axis=1)
        assert np.median(moved) < 2, name
    assert np.median(ink(corrupted["scale"]) / ink(digits)) == pytest.approx(0.49, abs=0.05)
    shift = centre_of_mass(corrupted["translate"]) - centre_of_mass(digits)
    assert np.median(np.abs(shift)) == pytest.approx(3, abs=0.3)  # 3 pixels along each axis
    assert set(np.sign(np.round(shift)).ravel()) == {-1, 1}  # either way, per image


def test_brightness_fog_and_stripe_change_the_background(digits, corrupted):
    background = digits == 0
    assert np.all(corrupted["brightness"][background] == 128)  # half the range added
    assert np.all(corrupted["brightness"] >= digits)
    fog = corrupted["fog"]
    assert fog[background].mean() > 40  # a cloud over the black
    assert fog.max(axis=(1, 2)).mean() < 200  # and the ink dimmed below full white
    stripe = corrupted["stripe"]
    assert np.array_equal(stripe[:, :, :7], 255 - digits[:, :, :7])
    assert np.array_equal(stripe[:, :, 21:], 255 - digits[:, :, 21:])
    assert np.array_equal(stripe[:, :, 7:21], digits[:, :, 7:21])


def test_lines_and_spatter_only_add(digits, corrupted):
    for name in ("dotted_line", "zigzag"):
        added = corrupted[name].astype(int) - digits
        assert added.min() >= 0, name  # lines drawn on top, nothing taken away
        assert np.all(added.sum(axis=(1, 2)) > 500), name  # every image got its line
    dotted = corrupted["dotted_line"].astype(int) - digits
    gaps = (np.arange(28) // 2) % 2 == 0
    assert dotted[:, :, gaps].max() == 0  # dashes two pixels on, two off
    zig = corrupted["zigzag"].astype(int) - digits
    assert zig[:, :, :1].max() == 0 and zig[:, :, 27:].max() == 0  # columns 2 to 25 only
    mud = corrupted["spatter"][digits == 0]
    assert 0.01 < np.mean(mud > 0) < 0.5  # blobs on some of the background...
    assert np.all(mud <= 63)  # ...of dark grey mud at most


def test_canny_keeps_only_the_outline(digits, corrupted):
    edges = corrupted["canny_edges"]
    assert set(np.unique(edges)) == {0, 255}
    near_ink = np.zeros_like(digits, bool)  # within 2 pixels of the digit's ink
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            near_ink |= np.roll(digits > 0, (dr, dc), axis=(1, 2))
    assert np.all(edges[~near_ink] == 0)
    assert np.all((edges > 0).sum(axis=(1, 2)) > 10)  # every digit has an outline
    assert np.mean(edges[digits == 255] > 0) < 0.2  # the stroke's core is not an edge


def test_cache_is_built_once_and_rebuilt_when_wrong(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTKIT_CACHE", str(tmp_path))
    few = digits[:12]
    path, built = corruptions.cached_corruptions(few)
    assert built and path.parent == tmp_path and path.suffix == ".npy"
    sets = corruptions.corrupted_sets(Mnist(
        few, np.zeros(12, np.uint8), few, np.zeros(12, np.uint8), "test", corrupted=str(path)))
    assert list(sets) == list(CORRUPTIONS)
    assert np.array_equal(sets["rotate"], corrupt("rotate", few))
    assert corruptions.cached_corruptions(few) == (path, False)  # read, not rebuilt
    # no temporary left: the cache and its digest only
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.stem + ".json", path.name]

    for damage in (b"not an array", np.zeros((15, 11, 28, 28), np.uint8),
                   np.zeros((15, 12, 28, 28), np.float32)):
        corruptions.open_cached.cache_clear()
        if isinstance(damage, bytes):
            path.write_bytes(damage)
        else:
            np.save(path, damage)
        with pytest.raises(ValueError):
            corruptions.open_cached(str(path), 12)
        assert corruptions.cached_corruptions(few) == (path, True)
        assert np.array_equal(np.load(path)[6], corrupt("rotate", few))
    assert corruptions.corrupted_sets(few) is None  # plain data: no corrupted sets


def _flip_fortran_order(path):
    data = path.read_bytes()
    assert b"'fortran_order': False" in data[:128]
    path.write_bytes(data.replace(b"'fortran_order': False", b"'fortran_order': True ", 1))


def _one_byte_changed(good):
    changed = good.copy()
    changed.flat[12345] ^= 1
    return changed


CHANGED = {  # the same shape and type, other content: each once gave wrong scores, exit 0
    "shifted names": lambda path, good: np.save(path, np.roll(good, 1, axis=0)),
    "all zeros": lambda path, good: np.save(path, np.zeros_like(good)),
    "fortran order": lambda path, good: _flip_fortran_order(path),
    "one byte": lambda path, good: np.save(path, _one_byte_changed(good)),
    "digest edited": lambda path, good: path.with_suffix(".json").write_text(
        path.with_suffix(".json").read_text().replace('"sha256": "', '"sha256": "0')),
    "digest missing": lambda path, good: path.with_suffix(".json").unlink(),
}


@pytest.mark.parametrize("change", list(CHANGED))
def test_a_cache_whose_content_changed_is_refused_and_rebuilt(change, digits, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("MNISTKIT_CACHE", str(tmp_path))
    few = digits[:12]
    path, _ = corruptions.cached_corruptions(few)
    good = np.load(path)
    CHANGED[change](path, good)
    corruptions.open_cached.cache_clear()
    with pytest.raises((ValueError, OSError)):
        corruptions.open_cached(str(path), 12)
    assert corruptions.cached_corruptions(few) == (path, True)
    assert np.array_equal(corruptions.open_cached(str(path), 12), good)


def test_a_killed_writers_temporary_is_removed(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTKIT_CACHE", str(tmp_path))
    stale, live = tmp_path / "tmpa1b2c3.npy.tmp", tmp_path / "mnist-c-d4e5f6.npy.tmp"
    stale.write_bytes(bytes(1000))
    live.write_bytes(bytes(1000))  # a concurrent writer's, seconds old: left to it
    os.utime(stale, (time.time() - 3600,) * 2)
    path, _ = corruptions.cached_corruptions(digits[:12])
    assert not stale.exists() and live.exists()
    os.utime(live, (time.time() - 3600,) * 2)
    assert corruptions.cached_corruptions(digits[:12]) == (path, False)  # also when read
    assert not live.exists()


def test_a_cache_that_cannot_be_written_fails_in_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    (tmp_path / "any.h5").write_text("a row of its own: the cache fails first")
    result = subprocess.run([sys.executable, "evaluate.py", str(tmp_path / "any.h5"),
                             "--corruptions"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "MNISTKIT_CACHE": str(blocker)})
    assert result.returncode == 2
    assert result.stderr.startswith("error: --corruptions: could not build the corrupted")
    assert "Traceback" not in result.stderr
