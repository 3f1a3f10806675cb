"""Stand-in for pywin32's win32job under the Windows simulation (tests/simulated), keeping
the two promises of a Job Object with Linux's means, so that the project's Windows branch
runs as written: a per-process memory limit (``JOB_OBJECT_LIMIT_PROCESS_MEMORY``) becomes
the process's ``RLIMIT_AS``, set from outside (prlimit), and kill-on-close
(``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``) a reaper process that kills the job's processes
when its pipe from the job's owner closes: on ``Close`` or however the owner ends. Every
call is recorded in ``CALLS`` for the unit tests."""

import copy
import resource
import subprocess
import sys

import psutil

JobObjectExtendedLimitInformation = 9
JOB_OBJECT_LIMIT_PROCESS_MEMORY = 0x00000100
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
CALLS: list = []
_REAPER = ("import os, signal, sys\n"
           "pids = [int(line) for line in sys.stdin]\n"  # until the owner's end closes
           "for pid in pids:\n"
           "    try: os.kill(pid, signal.SIGKILL)\n"
           "    except OSError: pass\n")


class Job:
    def __init__(self) -> None:
        self.info = {"BasicLimitInformation": {"LimitFlags": 0}, "ProcessMemoryLimit": 0}
        self.pids: list[int] = []
        self.reaper = None

    def Close(self) -> None:  # noqa: N802 - pywin32's name
        CALLS.append(("Close",))
        if self.reaper is not None:
            self.reaper.stdin.close()
            self.reaper.wait()
            self.reaper = None

    def apply(self) -> None:
        flags = self.info["BasicLimitInformation"]["LimitFlags"]
        if flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and self.reaper is None:
            self.reaper = subprocess.Popen([sys.executable, "-c", _REAPER],
                                           stdin=subprocess.PIPE, text=True)
            for pid in self.pids:
                self.reaper.stdin.write(f"{pid}\n")
            self.reaper.stdin.flush()
        if flags & JOB_OBJECT_LIMIT_PROCESS_MEMORY:
            limit = self.info["ProcessMemoryLimit"]
            for pid in self.pids:
                psutil.Process(pid).rlimit(resource.RLIMIT_AS, (limit, limit))


def CreateJobObject(attributes, name: str) -> Job:  # noqa: N802
    CALLS.append(("CreateJobObject",))
    return Job()


def QueryInformationJobObject(job: Job, kind: int) -> dict:  # noqa: N802
    assert kind == JobObjectExtendedLimitInformation
    return copy.deepcopy(job.info)


def SetInformationJobObject(job: Job, kind: int, info: dict) -> None:  # noqa: N802
    assert kind == JobObjectExtendedLimitInformation
    CALLS.append(("SetInformationJobObject", info["BasicLimitInformation"]["LimitFlags"],
                  info["ProcessMemoryLimit"]))
    job.info = copy.deepcopy(info)
    job.apply()


def AssignProcessToJobObject(job: Job, process) -> None:  # noqa: N802
    CALLS.append(("AssignProcessToJobObject", int(process)))
    job.pids.append(int(process))
    if job.reaper is not None:
        job.reaper.stdin.write(f"{int(process)}\n")
        job.reaper.stdin.flush()
    job.apply()
