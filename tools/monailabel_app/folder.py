"""The folder MONAI Label serves: MONAI Label creates ``model/``, ``lib/``, ``logs/`` and ``bin/`` inside the
``--app`` folder it is given, so that folder is the user's, not this package's (which may be read-only): it holds
only a ``main.py`` that imports :class:`regzoo.monailabel_app.main.RegZooApp`."""

from __future__ import annotations

import os

from common.atomic import atomic_open

__all__ = ["write_app_folder"]

_MAIN = '''"""regzoo's MONAI Label app folder (`regzoo monailabel-app`): the app is regzoo.monailabel_app.main."""

from regzoo.monailabel_app.main import RegZooApp  # noqa: F401  (MONAI Label finds the MONAILabelApp subclass here)
'''


def write_app_folder(out: str) -> str:
    """Write ``<out>/main.py`` (the shim above) and return ``out``; an existing ``main.py`` that is not the shim is
    refused, never replaced."""
    path = os.path.join(out, "main.py")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == _MAIN:
                return out
        raise FileExistsError(f"{path}: exists and is not regzoo's app shim; choose another folder")
    os.makedirs(out, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(_MAIN)
    return out
