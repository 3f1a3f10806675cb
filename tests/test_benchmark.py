"""The benchmarks run and report (their figures are for the README, not for asserts)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each benchmark run as a whole process: minutes


def run_benchmark(script, tmp_path, *argv):
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *argv, "--json", str(tmp_path / "b.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((tmp_path / "b.json").read_text())


def test_speed_benchmark_measures_epochs_as_whole_processes(tmp_path):
    out, report = run_benchmark("speed.py", tmp_path, "--quick")
    assert "| logreg | 2 |" in out and "share of peak" in out
    # each way once for 1 epoch and once for 2, so that (T2 - T1) is one epoch's cost
    assert sorted((run["way"], run["epochs"]) for run in report["runs"]) == [
        ("ours", 1), ("ours", 2), ("tutorial", 1), ("tutorial", 2)]
    for run in report["runs"]:
        assert len(run["epoch_seconds"]) == run["epochs"] and run["process_seconds"] > 0
        assert run["peak_mib"] > 0 and run["test_accuracy"] > 0.85
        assert run["flops_per_image"] == 3 * 2 * 784 * 10  # one Dense(10) on 784 pixels
        assert run["precision"] == "float32"  # logistic regression: bfloat16 would not pay
    assert set(report["peak_gflops"]) == {"float32", "bfloat16"}
    assert all(peak > 1 for peak in report["peak_gflops"].values())


def test_time_to_accuracy_benchmark_reports_each_seed(tmp_path):
    out, report = run_benchmark("time_to_accuracy.py", tmp_path, "--quick")
    (row,) = report["rows"]
    assert (row["preset"], row["seed"], row["epochs"]) == ("fast", 1, 1)
    assert row["accuracy"] > 0.97 and row["train_seconds"] > 0
    assert row["precision"] in ("float32", "bfloat16")  # bfloat16 where the CPU has it
    assert 0 < row["gflops_per_second"] < report["peak_gflops"][row["precision"]] * 1.5
    assert "| fast | 1 |" in out


def test_fixed_cost_benchmark_accounts_for_the_whole_process(tmp_path):
    out, report = run_benchmark("fixed_cost.py", tmp_path, "--models", "logreg", "--rounds", "1")
    assert sorted(run["way"] for run in report["runs"]) == ["ours", "tutorial"]
    for run in report["runs"]:
        stages = run["stages"]
        assert set(stages) == {"start-up", "import", "read MNIST", "prepare", "build",
                               "first epoch", "epochs", "test", "save", "rest", "exit"}
        assert sum(stages.values()) == pytest.approx(run["whole"])  # every second placed
        assert stages["import"] > 0.5 and stages["epochs"] > 0 and stages["test"] > 0
        assert abs(stages["rest"]) < 0.5 * run["whole"]  # the stages were found
        assert run["test_accuracy"] > 0.85
    ours = next(run for run in report["runs"] if run["way"] == "ours")
    assert ours["stages"]["save"] > 0 and ours["stages"]["exit"] < 0.3  # os._exit: no teardown
    assert "| logreg |" in out and "| first epoch |" in out


def test_the_previous_fast_preset_is_kept_for_the_comparison():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import time_to_accuracy

    assert time_to_accuracy.previous_fast_model(None).count_params() == 17_950


def test_modern_is_timed_against_the_recipe_of_record():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import time_to_accuracy

    old = time_to_accuracy.record_recipe_model()  # the 30-epoch recipe's model, as it was
    assert old.count_params() == 162_474
    assert [type(layer).__name__ for layer in old.layers[:4]] == [
        "RandomRotation", "RandomTranslation", "RandomZoom", "Conv2D"]
    timings = [{"estimate": 1600.0, "flops_per_image": 77_634_048, "train_images": 60_000},
               {"estimate": 1700.0, "flops_per_image": 77_634_048, "train_images": 60_000}]
    rows = [{"preset": "modern", "seed": seed, "accuracy": 0.9962, "errors": 38,
             "train_seconds": seconds, "epochs": 18, "gflops_per_second": 100.0,
             "target": 0.9955, "met": True, "note": "", "precision": "float32"}
            for seed, seconds in ((1, 800.0), (2, 850.0))]
    (before,) = time_to_accuracy.record_rows(timings, rows)
    assert before["train_seconds"] == 1650.0 and before["epochs"] == 30
    assert [row["note"] for row in rows] == ["0.48 of the recipe of record",
                                             "0.52 of the recipe of record"]
    table = time_to_accuracy.markdown([*rows, before], {"float32": 170.0, "bfloat16": 400.0})
    assert "825.0 / 1650.0 s = 0.50 (mean), 0.52 (slowest seed)" in table
