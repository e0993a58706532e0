"""One sweep per results folder: ``<out>/sweep.lock`` holds the pid of the sweep that owns the folder.

A second sweep into the same folder would share the CPU with the first and publish speed figures
measured under that load, so it is refused with the owner's pid. A lock whose pid no longer runs
(a killed sweep) is taken over.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "sweep.lock"


class FolderBusy(RuntimeError):
    """Another live sweep owns the results folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def _owner(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


@contextmanager
def sweep_lock(out_dir: Path):
    """Hold ``out_dir``'s lock for the ``with`` block; :class:`FolderBusy` names the owner when held."""
    path = Path(out_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # a second try after removing a dead owner's lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _owner(path)
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise FolderBusy(f"{out_dir} is in use by another sweep (pid {pid}, lock {path}); wait for it "
                                 f"to finish or pass another --out") from None
            path.unlink(missing_ok=True)
    else:
        raise FolderBusy(f"{out_dir}: could not take the lock {path}")
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
