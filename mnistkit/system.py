"""What only one operating system has, in one place: a branch per system (``SYSTEM``) for
each promise about worker processes, untrusted reads, signals and the CPU, kept as far as the
system allows. The rest is portable through psutil, filelock and platformdirs.

- A worker's memory: Linux limits its address space (``RLIMIT_AS``, clamped to the hard
  limit); Windows caps its committed memory with a Job Object; macOS has no such limit, so a
  watchdog in the parent ends a worker past it. A refused limit falls back to the watchdog.
- A worker ends with its parent: ``PR_SET_PDEATHSIG`` on Linux, the Job Object's kill on
  close on Windows, and on macOS (and Windows, as a second line) a thread watching the parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

SYSTEM = ("linux" if sys.platform.startswith("linux")
          else "windows" if sys.platform == "win32" else "macos")
# How a crash can end a worker, where the system has the signal (Windows: no SIGBUS, SIGKILL)
CRASH_SIGNALS = {getattr(signal, name): words for name, words in [
    ("SIGSEGV", "segmentation fault"), ("SIGBUS", "bus error"), ("SIGABRT", "abort"),
    ("SIGFPE", "arithmetic fault"), ("SIGILL", "illegal instruction")] if hasattr(signal, name)}
KILLED_STATUS = -getattr(signal, "SIGKILL", 9)
WATCH_SECONDS = 0.05  # how often a watchdog reads a worker's memory: a bomb gains ~0.5 GB
PARENT_SECONDS = 0.2  # how often a worker without PR_SET_PDEATHSIG looks for its parent
_PR_SET_PDEATHSIG, _SIGKILL = 1, 9  # prctl's option; Linux's SIGKILL (Windows has none)


# --------------------------------------------------------------------- the worker's side
def end_with_parent(parent: int) -> None:
    """Make this worker end when process ``parent`` ends; end now if it already has."""
    if SYSTEM == "linux":
        import ctypes

        # Without prctl (another libc), the pipe's end still stops an idle worker.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, _SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        return
    # macOS has no parent-death signal, so a thread watches; on Windows the parent's Job
    # Object ends the worker first, and this covers a worker the job could not take.
    try:
        watched = psutil.Process(parent)
    except psutil.Error:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(watched,), name="mnistkit-parent-watch",
                     daemon=True).start()


def _watch_parent(parent: psutil.Process) -> None:
    while _running(parent):
        time.sleep(PARENT_SECONDS)
    os._exit(1)


def limit_own_memory(budget: int) -> bool:
    """Limit this worker to the address space it maps now plus ``budget`` bytes; True when
    the system enforces that here, False when the parent must (:class:`WorkerGuard`)."""
    if SYSTEM != "linux":  # Windows: the parent's Job Object; macOS has no working limit
        return False
    import resource

    limit = psutil.Process().memory_info().vms + budget  # what the backend maps, and more
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:  # `ulimit -v`: never ask past it, take what it allows
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):  # refused all the same (a sandbox): the watchdog instead
        return False
    return True


# --------------------------------------------------------------------- the parent's side
class WorkerGuard:
    """The parent's hold on one worker process ``pid``, taken as soon as it runs.

    On Windows the worker joins a Job Object that ends it when this process ends (the job's
    handle closes however it ends) and, once :meth:`limit` is called, caps its committed
    memory. Where the worker could not limit itself and no job holds it (macOS, a refused
    limit), :meth:`limit` starts a watchdog that kills the worker once its resident memory
    passes the limit; ``exceeded`` then says why it died."""

    def __init__(self, pid: int):
        self.pid, self.exceeded = pid, False
        self._stopped = threading.Event()
        self._job = _windows_job(pid) if SYSTEM == "windows" else None

    def limit(self, budget: int, limited_in_worker: bool) -> None:
        """Hold the worker to what it uses now plus ``budget`` bytes, unless it did that
        itself (``limited_in_worker``)."""
        if limited_in_worker:
            return
        try:
            worker = psutil.Process(self.pid)
            if self._job is not None and _cap_job(self._job, worker.memory_info().vms + budget):
                return
            limit = worker.memory_info().rss + budget
        except psutil.Error:  # gone already: the next call says why
            return
        threading.Thread(target=self._watch, args=(worker, limit), daemon=True,
                         name=f"mnistkit-watchdog-{self.pid}").start()

    def close(self) -> None:
        """Stop watching; close the job (which ends the worker, if it still runs)."""
        self._stopped.set()
        if self._job is not None:
            with contextlib.suppress(Exception):  # pywin32's error type, or closed already
                self._job.Close()
            self._job = None

    def _watch(self, worker: psutil.Process, limit: int) -> None:
        while not self._stopped.wait(WATCH_SECONDS):
            try:
                if worker.memory_info().rss > limit:
                    self.exceeded = True
                    worker.kill()  # psutil checks first that the pid is still this worker
                    return
            except psutil.Error:  # it ended
                return


def _windows_job(pid: int):
    """A Job Object that kills its processes when its last handle closes, holding ``pid``;
    None where pywin32 or the system refuses (the worker's parent watch then remains)."""
    try:
        import win32api
        import win32con
        import win32job

        job = win32job.CreateJobObject(None, "")
        _set_job_limits(job, win32job.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)
        process = win32api.OpenProcess(win32con.PROCESS_SET_QUOTA | win32con.PROCESS_TERMINATE,
                                       False, pid)
        try:
            win32job.AssignProcessToJobObject(job, process)
        finally:
            win32api.CloseHandle(process)
    except Exception:  # noqa: BLE001 - ImportError or pywintypes.error: fall back, never fail
        return None
    return job


def _cap_job(job, limit: int) -> bool:
    """Cap each of the job's processes to ``limit`` bytes of committed memory."""
    with contextlib.suppress(Exception):  # no pywin32, or pywintypes.error: the watchdog
        import win32job

        _set_job_limits(job, win32job.JOB_OBJECT_LIMIT_PROCESS_MEMORY, limit)
        return True
    return False


def _set_job_limits(job, flags: int, memory: int | None = None) -> None:
    import win32job

    kind = win32job.JobObjectExtendedLimitInformation
    info = win32job.QueryInformationJobObject(job, kind)
    info["BasicLimitInformation"]["LimitFlags"] |= flags
    if memory is not None:
        info["ProcessMemoryLimit"] = memory
    win32job.SetInformationJobObject(job, kind, info)


# --------------------------------------------------------------------- processes and files
def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's too); a zombie does not."""
    try:
        return _running(psutil.Process(pid))
    except (psutil.Error, OverflowError, ValueError):  # gone, or a number no process has
        return False


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.AccessDenied:  # there, but another user's
        return True
    except psutil.Error:
        return False


def untrusted_open_flags() -> int:
    """``os.open`` flags for reading a file that came from outside: never blocking on it."""
    if SYSTEM == "windows":  # no FIFOs there; O_BINARY: no newline or Ctrl-Z translation
        return os.O_RDONLY | getattr(os, "O_BINARY", 0)
    return os.O_RDONLY | os.O_NONBLOCK  # a FIFO opens at once, and fstat then refuses it


# --------------------------------------------------------------------- the CPU
def cpu_name() -> str:
    """The CPU's marketing name, where the system says it."""
    try:
        if SYSTEM == "linux":
            with open("/proc/cpuinfo") as info:
                for line in info:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        elif SYSTEM == "macos":
            return _sysctl("machdep.cpu.brand_string") or "Apple silicon"
        else:
            import winreg

            key = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as opened:
                return str(winreg.QueryValueEx(opened, "ProcessorNameString")[0]).strip()
    except (OSError, ImportError):
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has the bfloat16 instructions that oneDNN's kernels run natively
    (x86's AVX512-BF16 or AMX), where TensorFlow's build uses oneDNN."""
    if SYSTEM == "linux":
        try:
            with open(cpuinfo or "/proc/cpuinfo") as info:
                for line in info:
                    if line.startswith("flags"):
                        return bool({"avx512_bf16", "amx_bf16"} & set(line.split()))
        except OSError:
            pass
        return False
    if SYSTEM == "windows":  # no cpuinfo: NumPy's own CPUID reading at start-up
        try:
            from numpy._core._multiarray_umath import __cpu_features__
        except ImportError:
            return False
        return bool(__cpu_features__.get("AVX512BF16"))
    # macOS: M2 and later have bfloat16 (sysctl hw.optional.arm.FEAT_BF16), but TensorFlow's
    # macOS build has no oneDNN: its bfloat16 is converted to float32, which stays faster.
    return False


def _sysctl(name: str) -> str:
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
