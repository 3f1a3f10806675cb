"""Stand-in for pywin32's win32con under the Windows simulation: the access rights used."""

PROCESS_TERMINATE = 0x0001
PROCESS_SET_QUOTA = 0x0100
