"""Run this Python as if on Windows or macOS, for the project's own code: loaded at start-up
when this folder is on PYTHONPATH and MNISTKIT_SIMULATE names a system (tests/platforms.py).

The project's modules and scripts then see that system's facts: no ``fcntl`` or ``resource``
on Windows, no ``/proc`` on either, ``RLIMIT_AS`` refused on macOS, no ``O_NONBLOCK``,
``os.pread``, SIGHUP, SIGKILL or SIGBUS on Windows; and ``mnistkit.system`` takes that
system's branch (Windows' Job Object through the stand-in pywin32 in ``windows/``). The
libraries keep their Linux selves: a simulation checks the project's code, not theirs.
"""

import builtins
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIMULATED = os.environ.get("MNISTKIT_SIMULATE", "")
PROJECT = (str(ROOT / "mnistkit"), *(str(path) for path in ROOT.glob("*.py")))
HIDDEN = {  # (module, name) missing on the simulated system; None: the whole module
    "windows": {"fcntl": None, "resource": None,
                "os": {"O_NONBLOCK", "pread", "pwrite", "mkfifo", "getuid", "geteuid",
                       "killpg", "setsid", "fork", "sysconf", "pathconf", "statvfs",
                       "getpgid", "O_NOFOLLOW", "O_DIRECTORY", "WNOHANG", "sched_getaffinity"},
                "signal": {"SIGHUP", "SIGKILL", "SIGBUS", "SIGPIPE", "SIGALRM", "SIGUSR1",
                           "SIGUSR2", "SIGQUIT", "SIGCHLD", "SIGSTOP", "SIGCONT", "alarm",
                           "setitimer", "pause", "pthread_kill", "pthread_sigmask"}},
    "macos": {"os": {"sched_getaffinity", "pipe2"}},
}


class _Partial(types.ModuleType):
    """A module less the names the simulated system lacks, with its refusals."""

    def __init__(self, module, hidden, replaced):
        super().__init__(module.__name__)
        self._module, self._hidden, self._replaced = module, hidden, replaced

    def __getattr__(self, name):
        if name in self._hidden:
            raise AttributeError(f"module {self._module.__name__!r} has no attribute {name!r}"
                                 f" (simulated {SIMULATED})")
        return self._replaced.get(name) or getattr(self._module, name)


def _from_project(frame_globals) -> bool:
    return str((frame_globals or {}).get("__file__") or "").startswith(PROJECT)


def _no_proc(path) -> None:
    if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith("/proc"):
        raise FileNotFoundError(2, f"No such file or directory (simulated {SIMULATED})",
                                os.fspath(path))


def _refused_setrlimit(resource, kind, limits):
    if kind == resource.RLIMIT_AS:  # macOS takes no address-space limit
        raise ValueError("current limit exceeds maximum limit")
    return resource.setrlimit(kind, limits)


def _install() -> None:
    hidden = HIDDEN[SIMULATED]
    real_import, real_open, real_os_open = builtins.__import__, builtins.open, os.open
    partial = {}

    def os_open(path, *arguments, **keywords):
        _no_proc(path)
        return real_os_open(path, *arguments, **keywords)

    def simulated_import(name, globals=None, locals=None, fromlist=(), level=0):
        module = real_import(name, globals, locals, fromlist, level)
        if level or not _from_project(globals) or name not in (*hidden, "os", "resource"):
            return module
        if hidden.get(name, ()) is None:
            raise ModuleNotFoundError(f"No module named {name!r} (simulated {SIMULATED})")
        if name not in partial:
            replaced = {"open": os_open} if name == "os" else {}
            if name == "resource":
                replaced["setrlimit"] = lambda kind, limits: _refused_setrlimit(module, kind,
                                                                               limits)
            partial[name] = _Partial(module, hidden.get(name, set()), replaced)
        return partial[name]

    def simulated_open(file, *arguments, **keywords):
        if _from_project(sys._getframe(1).f_globals):
            _no_proc(file)
        return real_open(file, *arguments, **keywords)

    builtins.__import__, builtins.open = simulated_import, simulated_open
    if SIMULATED == "windows":
        sys.path.insert(0, str(Path(__file__).parent / "windows"))  # the stand-in pywin32
    sys.path.append(str(ROOT))
    import mnistkit.system

    mnistkit.system.SYSTEM = SIMULATED


if SIMULATED in HIDDEN:
    _install()
