"""Where the project keeps what it makes outside the repository: its cache folder, in each
system's usual place (platformdirs: ~/.cache or $XDG_CACHE_HOME on Linux, ~/Library/Caches
on macOS, %LOCALAPPDATA% on Windows)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "mnistkit"


def cache_folder() -> Path:
    """$MNISTKIT_CACHE, else mnistkit in the user's cache folder: never the repository."""
    if os.environ.get("MNISTKIT_CACHE"):
        return Path(os.environ["MNISTKIT_CACHE"]).expanduser()
    return user_cache()


def user_cache() -> Path:
    """The user's own cache folder for the project, whatever $MNISTKIT_CACHE says."""
    return platformdirs.user_cache_path(APP, appauthor=False)
