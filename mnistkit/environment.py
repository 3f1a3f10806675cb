"""Whether this Python has what the scripts need, told before anything heavy is imported: a
script run outside the project's environment (a bare ``python3 train_cnn.py``) says so in
one line, with the fix, instead of a traceback or a row per model."""

from __future__ import annotations

import importlib.util
import os
import sys

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def missing_packages() -> list[str]:
    """The packages the scripts import that this Python cannot find (none are imported)."""
    backend = BACKEND_MODULES.get(os.environ.get("KERAS_BACKEND") or "tensorflow")
    needed = ["numpy", "keras", "psutil", "filelock", "platformdirs",
              *([backend] if backend else [])]
    return [name for name in needed if importlib.util.find_spec(name) is None]


def require_installed() -> None:
    """Exit with one line, status 2, when a package the scripts need is missing."""
    missing = missing_packages()
    if not missing:
        return
    activate = (r".venv\Scripts\Activate.ps1" if os.name == "nt"
                else "source .venv/bin/activate")
    print(f"error: this Python ({sys.executable}) lacks {', '.join(missing)}: activate the "
          f"project's environment ({activate}) or install the requirements (pip install -r "
          "requirements.txt)", file=sys.stderr)
    raise SystemExit(2)
