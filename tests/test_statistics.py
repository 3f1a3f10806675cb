"""The statistics of evaluate.py against worked examples (the figures were checked against
scipy.stats.binomtest and its Wilson interval), and the table and words built on them."""

import numpy as np
import pytest

from mnistkit.report.table import comparison_lines, markdown_table
from mnistkit.score.evaluation import Row
from mnistkit.score.statistics import (
    binomial_two_sided,
    compare_all,
    expected_calibration_error,
    mcnemar,
    reliability,
    wilson_interval,
)


def correctness(only_a: int, only_b: int, both: int = 50, neither: int = 5):
    """Per-image correctness of two models with the given discordant counts."""
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize("only_a,only_b,p_value", [
    (1, 9, 0.021484375),  # 2 * (1 + 10) / 2**10, exactly
    (9, 1, 0.021484375),  # the test is two-sided: the order does not matter
    (31, 12, 0.0054015727),
    (20, 17, 0.7428293587),
    (3, 0, 0.25),  # 2 * 0.5**3
    (0, 0, 1.0),  # no image differs: nothing to say
    (5000, 4800, 0.0444041488),  # large counts stay exact (no normal approximation)
])
def test_exact_mcnemar_matches_the_binomial_test(only_a, only_b, p_value):
    comparison = mcnemar("a.h5", "b.h5", *correctness(only_a, only_b))
    assert (comparison.only_a, comparison.only_b) == (only_a, only_b)
    assert comparison.p_value == pytest.approx(p_value, rel=1e-8)


def test_binomial_tail_is_capped_at_one():
    assert binomial_two_sided(5, 10) == 1.0  # the middle: both tails overlap


@pytest.mark.parametrize("right,total,low,high", [
    (81, 263, 0.2552885199, 0.3662095770),
    (9209, 10_000, 0.9154470814, 0.9260296688),
    (10_000, 10_000, 0.9996160016, 1.0),  # all right: still an interval, not a point
    (0, 10, 0.0, 0.2775327998),
])
def test_wilson_interval_matches_worked_examples(right, total, low, high):
    assert wilson_interval(right, total) == pytest.approx((low, high), abs=1e-9)


def test_verdicts_say_which_differences_are_real():
    real = mcnemar("models/a.h5", "models/b.h5", *correctness(31, 12))
    assert real.verdict() == "a.h5 beats b.h5: 31 vs 12 images, p = 0.0054"
    assert mcnemar("a", "b", *correctness(12, 31)).verdict() == \
        "b beats a: 31 vs 12 images, p = 0.0054"
    same = mcnemar("a", "b", *correctness(20, 17))
    assert not same.real
    assert same.verdict("A", "B") == "A and B: no real difference (20 vs 17 images, p = 0.74)"
    assert mcnemar("a", "b", *correctness(400, 100)).verdict().endswith("p < 0.0001")
    assert set(real.as_dict()) == {"a", "b", "only_a", "only_b", "p_value", "real", "verdict"}


def test_every_pair_is_compared_once_in_order():
    labels = np.array([0, 1, 2, 3])
    predictions = {"x": np.array([0, 1, 2, 3]), "y": np.array([0, 1, 0, 0]),
                   "z": np.array([9, 1, 2, 0]), "missing": None}
    pairs = compare_all(predictions, labels)
    assert [(pair.a, pair.b) for pair in pairs] == [("x", "y"), ("x", "z"), ("y", "z")]
    assert [(pair.only_a, pair.only_b) for pair in pairs] == [(2, 0), (2, 0), (1, 1)]


def test_ece_of_a_hand_made_example():
    # Four images at confidence 0.95, three right (a gap of 0.2), two at 0.55, one right
    # (a gap of 0.05): ECE = (4 * 0.2 + 2 * 0.05) / 6 = 0.15.
    def sure(p, digit):
        row = np.full(10, (1 - p) / 9)
        row[digit] = p
        return row

    probabilities = np.array([sure(0.95, 1)] * 4 + [sure(0.55, 2)] * 2)
    labels = np.array([1, 1, 1, 0, 2, 0])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.15)
    counts, confidence, accuracy = reliability(probabilities, labels)
    assert counts.sum() == 6 and counts[14] == 4 and counts[8] == 2  # (0.533, 0.6] is bin 8
    assert confidence[14] == pytest.approx(0.95) and accuracy[14] == pytest.approx(0.75)
    assert np.isnan(accuracy[0])  # an empty bin has no accuracy

    certain = np.eye(10)[[3, 4]]  # confidence exactly 1, both right: the last bin, no gap
    assert expected_calibration_error(certain, np.array([3, 4])) == 0.0


def test_table_shows_interval_ece_latency_and_corruptions_only_when_scored():
    row = Row(path="m/a.h5", params=10, accuracy=0.92, errors=800, total=10_000, loss=0.3,
              seconds=0.5, input_scale="0-1", interval=[0.9146, 0.9252], ece=0.0123,
              latency={"ms_per_image_batch1": 0.81, "images_per_second_batch1000": 1e5})
    table = markdown_table([row, Row(path="bad.h5", error="damaged")])
    lines = table.splitlines()
    assert "corrupted" not in lines[0] and len(lines) == 4
    assert "| 0.9200 | 800/10000 | 0.3000 | 0.9146–0.9252 | 0.0123 | 0.81 |" in lines[2]
    assert lines[3].count("|") == lines[0].count("|")  # the failed row has every column
    row.mean_corruption_accuracy = 0.7512
    lines = markdown_table([row, Row(path="bad.h5", error="damaged")]).splitlines()
    assert "| corrupted |" in lines[0] and "| 0.81 | 0.7512 |" in lines[2]
    assert len({line.count("|") for line in lines}) == 1


def test_many_models_name_only_neighbours_in_the_terminal():
    labels = np.zeros(100, np.uint8)
    rows = []
    for rank in range(7):  # each model gets 10 more images wrong than the one before
        predicted = np.zeros(100, np.uint8)
        predicted[:10 * rank] = 1
        rows.append(Row(path=f"m{rank}.h5", accuracy=1 - rank / 10, predicted=predicted))
    pairs = compare_all({row.path: row.predicted for row in rows}, labels)
    assert len(pairs) == 21
    lines = comparison_lines(rows, pairs)
    assert lines == [f"m{rank}.h5 beats m{rank + 1}.h5: 10 vs 0 images, p = 0.002"
                     for rank in range(6)]
    assert len(comparison_lines(rows[:3], compare_all(
        {row.path: row.predicted for row in rows[:3]}, labels))) == 3  # few: every pair
