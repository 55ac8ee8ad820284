"""Writing files and folders complete or not at all; replacing only what regzoo wrote.

Every writer of the project goes through these two functions (results, checkpoints, training states, tables,
archives, downloads, demo data):

- :func:`atomic_path` yields a temporary path beside the target; the target is replaced (one ``os.replace``,
  atomic on POSIX) only when the block ends without error. An error, ``Ctrl-C`` or ``SIGTERM`` (the ``regzoo``
  command turns it into ``SystemExit``) removes the temporary file; a ``SIGKILL`` can leave it, under a hidden
  name carrying the writer's process id, and the next writer of the same target removes it. The previous
  version of the target stays intact until the new one is complete.
- :func:`atomic_folder` does the same for a folder. The finished folder holds a marker, ``.regzoo-output``,
  listing what was written. ``overwrite`` replaces an existing folder only when the marker lists everything it
  holds: a folder with anyone else's files in it is refused, never deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "OUTPUT_MARKER",
    "atomic_folder",
    "atomic_open",
    "atomic_path",
    "check_new_folder",
    "check_replaceable",
    "check_writable",
    "owned_entries",
]

OUTPUT_MARKER = ".regzoo-output"
_PARTIAL_MARKER = ".regzoo-partial"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: str, prefix: str) -> None:
    """Remove temporaries ``<prefix><pid>.<random>.partial`` left by writers that are no longer running."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".partial")):
            continue
        pid = name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(parent, name)
        if os.path.isdir(path) and not os.path.islink(path):
            if os.path.isfile(os.path.join(path, _PARTIAL_MARKER)):  # only folders this module made
                shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass


def _prefix(target: str) -> str:
    return f".{os.path.basename(target)}.tmp-"


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary file path in ``path``'s folder; on success it replaces ``path``, on any error or
    interruption it is removed and ``path`` is left as it was. The folder must exist."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder, expected a file")
    _remove_stale(parent, _prefix(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{_prefix(path)}{os.getpid()}.", suffix=".partial", dir=parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """``open(path, mode, **kwargs)`` through :func:`atomic_path`: readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def owned_entries(folder: str) -> set[str] | None:
    """The entries (relative paths) the marker of ``folder`` lists, or ``None`` without a readable marker."""
    try:
        with open(os.path.join(folder, OUTPUT_MARKER), encoding="utf-8") as f:
            listed = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {str(name) for name in listed} if isinstance(listed, list) else None


def _entries(folder: str) -> set[str]:
    found = set()
    for directory, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            found.add(os.path.relpath(os.path.join(directory, name), folder))
    return found - {OUTPUT_MARKER}


def check_replaceable(folder: str) -> None:
    """Raise ``FileExistsError`` unless ``folder`` holds only what regzoo wrote there (its marker's list)."""
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise FileExistsError(f"{folder}: exists and is not a folder regzoo wrote; refusing to replace it")
    owned = owned_entries(folder)
    if owned is None:
        if not os.listdir(folder):
            return
        raise FileExistsError(
            f"{folder}: was not written by regzoo (no {OUTPUT_MARKER} marker); refusing to replace it even with "
            "overwrite: move its files away or choose another folder"
        )
    foreign = sorted(_entries(folder) - owned)
    if foreign:
        raise FileExistsError(
            f"{folder}: holds files regzoo did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); refusing to replace it even with overwrite"
        )


def check_writable(path: str) -> None:
    """Raise ``PermissionError`` naming ``path`` when it could not be created: its nearest existing folder is
    not writable (checked before any work, so a long run does not fail at its last step)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"{path}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot be written, {parent} is not writable")


def check_new_folder(folder: str, overwrite: bool = False) -> None:
    """The checks of :func:`atomic_folder`, to run before any work: ``folder`` is absent or empty (or, with
    ``overwrite``, a folder regzoo wrote) and can be created."""
    if os.path.lexists(folder):
        if not os.path.isdir(folder) or os.path.islink(folder):
            raise FileExistsError(f"{folder}: is a file, not a folder; refusing to replace it")
        if not overwrite and os.listdir(folder):
            raise FileExistsError(f"{folder}: exists; refusing to overwrite it (set overwrite to replace it)")
        check_replaceable(folder)
    check_writable(folder)


@contextmanager
def atomic_folder(folder: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary folder beside ``folder``; when the block ends without error it gets the marker and
    takes ``folder``'s place. An existing ``folder`` is refused unless ``overwrite`` and
    :func:`check_replaceable` (checked before anything is written and again before the swap)."""
    folder = os.path.abspath(folder)
    check_new_folder(folder, overwrite)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent, _prefix(folder))
    tmp = tempfile.mkdtemp(prefix=f"{_prefix(folder)}{os.getpid()}.", suffix=".partial", dir=parent)
    open(os.path.join(tmp, _PARTIAL_MARKER), "w").close()
    old = None
    try:
        yield tmp
        os.remove(os.path.join(tmp, _PARTIAL_MARKER))
        with open(os.path.join(tmp, OUTPUT_MARKER), "w", encoding="utf-8") as f:
            json.dump({"files": sorted(_entries(tmp))}, f, indent=1)
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.lexists(folder):
            check_replaceable(folder)
            old = tempfile.mkdtemp(prefix=f"{_prefix(folder)}{os.getpid()}.", suffix=".partial", dir=parent)
            os.replace(folder, os.path.join(old, "previous"))
            open(os.path.join(old, _PARTIAL_MARKER), "w").close()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.lexists(folder) and os.path.isdir(os.path.join(old, "previous")):
            os.replace(os.path.join(old, "previous"), folder)  # put the previous result back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
