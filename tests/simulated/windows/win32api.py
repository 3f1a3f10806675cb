"""Stand-in for pywin32's win32api under the Windows simulation (tests/simulated): a process
handle is its pid."""


class ProcessHandle(int):
    def Close(self) -> None:  # noqa: N802 - pywin32's name
        pass


def OpenProcess(access: int, inherit: bool, pid: int) -> ProcessHandle:  # noqa: N802
    return ProcessHandle(pid)


def CloseHandle(handle) -> None:  # noqa: N802
    handle.Close()
