"""Each system's branch of mnistkit.system, with that system's facts simulated on Linux: no
fcntl or resource, no /proc, RLIMIT_AS refused, no O_NONBLOCK, no parent-death signal. The
main flows under the whole simulation are in tests/test_platform_flows.py."""

import re
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from mnistkit import system
from tests.conftest import ROOT, linux_only
from tests.platforms import SIMULATED, SYSTEMS, run_python, simulated_env, start_python

GROWING = ("import time\nheld = []\n"
           "for _ in range(400):\n    held.append(bytearray(2**24)); time.sleep(0.01)\n")
SLEEPING = "import time; time.sleep(60)"
LINUX_ONLY = re.compile(r"\bfcntl\b|import resource|[\"']/proc|prctl|O_NONBLOCK|os\.kill\(|"
                        r"os\.pread\(|signal\.SIG(BUS|KILL|HUP)\b|/tmp\b")


def _gone(process: subprocess.Popen, seconds: float = 10) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def test_what_one_system_has_is_called_in_one_module():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in [*ROOT.glob("*.py"), *(ROOT / "mnistkit").rglob("*.py")]
             if path.name != "system.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if LINUX_ONLY.search(line)]
    assert found == []


# ------------------------------------------------------------------ a worker's memory
@linux_only
def test_linux_clamps_the_limit_to_a_hard_limit_it_cannot_pass():
    hard = 6 * 2**30  # `ulimit -v`: less than the 10 GB asked
    done = run_python(None, "-c", "import resource\n"
                      f"resource.setrlimit(resource.RLIMIT_AS, ({hard}, {hard}))\n"
                      "from mnistkit import system\n"
                      "print(system.limit_own_memory(10 * 2**30),"
                      " resource.getrlimit(resource.RLIMIT_AS))")
    assert done.stdout.split(None, 1) == ["True", f"({hard}, {hard})\n"], done.stderr


@linux_only
def test_a_limit_the_system_refuses_leaves_the_parent_to_watch(monkeypatch, simulated):
    import resource

    def refuse(kind, limits):
        raise ValueError("not allowed to raise maximum limit")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert system.limit_own_memory(2**30) is False
    for name in SYSTEMS:  # neither has a working limit a worker sets on itself
        simulated(name)
        monkeypatch.setitem(sys.modules, "resource", None)  # Windows: no such module
        assert system.limit_own_memory(2**30) is False


@linux_only
def test_the_watchdog_ends_a_worker_past_its_limit_and_only_that(simulated):
    simulated("macos")
    grower, sleeper = start_python(GROWING), start_python(SLEEPING)
    guards = [system.WorkerGuard(grower.pid), system.WorkerGuard(sleeper.pid)]
    time.sleep(0.5)  # both started
    for guard in guards:
        guard.limit(300 * 2**20, limited_in_worker=False)
    try:
        assert _gone(grower) and grower.returncode == -signal.SIGKILL
        assert guards[0].exceeded and not guards[1].exceeded and sleeper.poll() is None
    finally:
        for guard in guards:
            guard.close()
        sleeper.kill()
        sleeper.wait()


@linux_only
def test_windows_job_caps_memory_and_ends_the_worker_when_closed(monkeypatch, simulated):
    simulated("windows")
    monkeypatch.syspath_prepend(str(SIMULATED / "windows"))  # pywin32's stand-in
    import win32job

    win32job.CALLS.clear()
    worker = start_python(SLEEPING)
    guard = system.WorkerGuard(worker.pid)
    kill = win32job.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    memory = win32job.JOB_OBJECT_LIMIT_PROCESS_MEMORY
    used = psutil.Process(worker.pid).memory_info().vms
    guard.limit(2**30, limited_in_worker=False)
    calls = win32job.CALLS
    assert calls[:3] == [("CreateJobObject",), ("SetInformationJobObject", kill, 0),
                         ("AssignProcessToJobObject", worker.pid)]
    (_, flags, limit), = [call for call in calls[3:] if call[0] == "SetInformationJobObject"]
    assert flags == kill | memory and 0 <= limit - used - 2**30 < 2**26
    assert psutil.Process(worker.pid).rlimit(psutil.RLIMIT_AS) == (limit, limit)
    guard.close()
    assert _gone(worker, 5)


@linux_only
def test_windows_without_pywin32_falls_back_to_the_watchdog(monkeypatch, simulated):
    simulated("windows")
    monkeypatch.setitem(sys.modules, "win32job", None)
    grower = start_python(GROWING)
    guard = system.WorkerGuard(grower.pid)
    time.sleep(0.5)
    guard.limit(300 * 2**20, limited_in_worker=False)
    try:
        assert guard._job is None and _gone(grower) and guard.exceeded
    finally:
        guard.close()


# ------------------------------------------------------------------ a worker ends with its parent
@linux_only
@pytest.mark.parametrize("name", ["linux", *SYSTEMS])
def test_a_worker_ends_with_its_parent(name):
    child = (f"import os, sys, time\nfrom mnistkit import system\nsystem.SYSTEM = {name!r}\n"
             "system.end_with_parent(int(sys.argv[1]))\ntime.sleep(60)\n")
    parent = ("import os, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid())])\n"
              "print(child.pid, flush=True)\ntime.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", parent, child], stdout=subprocess.PIPE,
                               env=simulated_env(None), cwd=ROOT, text=True)
    worker = psutil.Process(int(process.stdout.readline()))
    time.sleep(1)  # past end_with_parent
    process.kill()
    process.wait()
    deadline = time.monotonic() + 5
    while system.process_running(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not system.process_running(worker.pid), f"the worker outlived its parent ({name})"


@linux_only
def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    gone = start_python("pass")
    gone.wait()
    for name in ("linux", *SYSTEMS):
        done = run_python(None, "-c", f"from mnistkit import system\nsystem.SYSTEM = {name!r}\n"
                          f"system.end_with_parent({gone.pid})\nimport time; time.sleep(30)")
        assert done.returncode == 1, name


# ------------------------------------------------------------------ under each whole simulation
@linux_only
@pytest.mark.parametrize("name", SYSTEMS)
def test_a_picture_worker_starts_answers_and_ends_with_its_parent(name):
    script = ("import io, sys, time\nimport numpy as np\nfrom PIL import Image\n"
              "from mnistkit import system\nfrom mnistkit.score.pictures import PictureReader\n"
              "canvas = np.zeros((100, 100), np.uint8)\ncanvas[20:80, 45:55] = 255\n"
              "png = io.BytesIO()\nImage.fromarray(canvas).save(png, 'PNG')\n"
              "reader = PictureReader()\n"
              "shape = reader.digits(png.getvalue(), 'one.png').shape\n"
              "print(system.SYSTEM, reader.worker.process.pid, *shape, flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                              env=simulated_env(name), stdout=subprocess.PIPE)
    said, pid, *shape = parent.stdout.readline().split()
    assert said == name and shape == ["1", "28", "28"]
    threading.Event().wait(0.5)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while system.process_running(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not system.process_running(int(pid)), f"worker {pid} outlived its parent ({name})"
