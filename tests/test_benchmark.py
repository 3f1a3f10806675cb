"""The speed benchmark runs and reports (its figures are for the README, not for asserts)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_quick_benchmark_reports_both_ways(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/speed.py", "--quick", "--json", str(tmp_path / "b.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| logreg | 2 |" in result.stdout and "| deeper | 2 |" in result.stdout
    report = json.loads((tmp_path / "b.json").read_text())
    assert {(run["model"], run["way"]) for run in report["runs"]} == {
        ("logreg", "tutorial"), ("logreg", "ours"), ("deeper", "tutorial"), ("deeper", "ours")}
    for run in report["runs"]:
        assert len(run["epoch_seconds"]) == 2 and run["images_per_second"] > 0
        assert run["peak_mib"] > 0 and run["test_accuracy"] > 0.85
