"""The rest of mnistkit.system and what surrounds it, with another system's facts simulated on
Linux (tests/test_platforms.py has the workers): processes, untrusted reads, the CPU, folder
locks; and the CI workflow that runs the quick lane on each system."""

import re
import subprocess
import sys
import time

import psutil
import pytest

from mnistkit import system
from tests.conftest import ROOT, linux_only, needs
from tests.platforms import simulated_env, start_python


# ------------------------------------------------------------------ processes, files, the CPU
@linux_only
def test_process_running_tells_running_from_ended_and_zombies():
    assert system.process_running(psutil.Process().pid)
    zombie = start_python("pass")
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not system.process_running(zombie.pid)
    zombie.wait()
    assert not system.process_running(zombie.pid) and not system.process_running(2**40)


@linux_only
def test_windows_reads_outside_files_without_o_nonblock(monkeypatch, simulated, tmp_path):
    from mnistkit.files.bounded import read_bytes

    simulated("windows")
    monkeypatch.delattr("os.O_NONBLOCK")
    (tmp_path / "r.json").write_bytes(b'{"a": "b\r\n\x1a"}')  # no newline or Ctrl-Z translated
    assert read_bytes(tmp_path / "r.json", 100) == b'{"a": "b\r\n\x1a"}'
    with pytest.raises(ValueError, match="at most 5"):
        read_bytes(tmp_path / "r.json", 5)


@linux_only
def test_cpu_facts_without_proc_cpuinfo(monkeypatch, simulated):
    from numpy._core import _multiarray_umath

    simulated("windows")
    monkeypatch.setitem(_multiarray_umath.__cpu_features__, "AVX512BF16", True)
    assert system.cpu_has_bfloat16()
    monkeypatch.setitem(_multiarray_umath.__cpu_features__, "AVX512BF16", False)
    assert not system.cpu_has_bfloat16()
    simulated("macos")
    answers = {"machdep.cpu.brand_string": "Apple M2", "hw.optional.arm.FEAT_BF16": "1"}
    monkeypatch.setattr(system.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(
        argv, 0, answers[argv[-1]] + "\n", ""))
    assert system.cpu_name() == "Apple M2"
    assert not system.cpu_has_bfloat16()  # TensorFlow's macOS build: no oneDNN to use it


@linux_only
def test_folders_are_locked_through_a_file_in_the_users_cache(tmp_path, monkeypatch):
    from mnistkit.files.saving import write_json

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    holder = ("import sys, time\nfrom pathlib import Path\n"
              "from mnistkit.files.saving import _lock_for\n"
              "with _lock_for(Path(sys.argv[1])):\n    print('held', flush=True)\n"
              "    time.sleep(1.5)\n")
    folder = tmp_path / "models"
    folder.mkdir()
    process = subprocess.Popen([sys.executable, "-c", holder, str(folder)], cwd=ROOT,
                               env=simulated_env(None), stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    started = time.monotonic()
    write_json({"a": 1}, folder / "m.json")
    assert time.monotonic() - started > 0.8  # it waited for the other process's renames
    process.wait()
    assert [path.name for path in folder.iterdir()] == ["m.json"]  # no lock file in it
    assert len(list((tmp_path / "cache" / "mnistkit" / "locks").glob("*.lock"))) == 1


# ------------------------------------------------------------------ CI on each system
def test_the_workflow_runs_the_readmes_quick_lane_on_each_system():
    import yaml

    readme = (ROOT / "README.md").read_text()
    tests = readme[readme.index("## Tests\n"):readme.index("\n## ", readme.index("## Tests\n"))]
    blocks = re.findall(r"```(?:bash|powershell)\n(.*?)```", tests, re.S)
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "tests.yml").read_text())
    job = workflow["jobs"]["quick-lane"]
    assert job["strategy"]["matrix"]["os"] == ["ubuntu-latest", "windows-latest", "macos-14"]
    for system_name, block in zip(["Linux", "macOS", "Windows"], blocks, strict=True):
        runs = [step["run"] for step in job["steps"]
                if step.get("if") == f"runner.os == '{system_name}'"]
        assert runs == block.splitlines(), system_name
        assert runs[1].endswith('-m pytest -m "not slow" -n 2 --dist loadfile'), system_name


@needs("torch")
def test_apple_silicons_gpu_is_named_where_keras_on_torch_computes(monkeypatch):
    import keras
    import torch

    from mnistkit import runtime

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.delenv("KERAS_TORCH_DEVICE", raising=False)
    assert runtime.device() == "GPU: Apple silicon (Metal)"
    monkeypatch.setenv("KERAS_TORCH_DEVICE", "cpu")  # what --device cpu sets
    assert runtime.device().startswith("CPU: ")
