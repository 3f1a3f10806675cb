"""Where the project keeps what it makes outside the repository: its cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    """$MNISTKIT_CACHE, else mnistkit/ in the user's cache folder: never the repository."""
    if os.environ.get("MNISTKIT_CACHE"):
        return Path(os.environ["MNISTKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnistkit"
