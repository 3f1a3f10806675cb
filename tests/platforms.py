"""Running the project as if on another system (tests/simulated/sitecustomize.py): the
environment a subprocess needs for it, and a small script run under it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SIMULATED = ROOT / "tests" / "simulated"
SYSTEMS = ("windows", "macos")


def simulated_env(system: str | None) -> dict[str, str]:
    """os.environ for a subprocess that runs as on ``system`` (None: this Linux itself)."""
    env = {key: value for key, value in os.environ.items() if key != "MNISTKIT_SIMULATE"}
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    if system is not None:
        env["MNISTKIT_SIMULATE"] = system
        paths.insert(0, str(SIMULATED))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_python(system: str | None, *argv: str | Path, timeout: float = 600,
               cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python argv`` under ``system``, its output as text."""
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=simulated_env(system),
                          capture_output=True, text=True, timeout=timeout)


def start_python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])
