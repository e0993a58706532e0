"""The one atomic writer: a file or a folder appears complete under its name, or not at all.

``write_atomically(target, write)`` calls ``write(staged)`` with a path beside ``target`` (same
folder, so same file system) that does not exist yet; ``write`` creates a file or a folder
there. The staged path is then renamed to ``target``: readers see the old content or the new,
never a part. If ``write`` raises (a crash, a full disk), the staged path is removed and
``target`` is untouched. A folder that another process completed first is kept as it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Create ``target`` (a file or a folder) from ``write(staged)``, all or nothing."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staged = stage / target.name
    try:
        write(staged)
        if staged.is_dir():
            _rename_folder(staged, target)
        else:
            os.replace(staged, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` to the file ``path``, all or nothing."""
    write_atomically(Path(path), lambda staged: staged.write_text(text))


def _rename_folder(staged: Path, target: Path) -> None:
    try:
        staged.rename(target)
    except OSError:
        if not target.is_dir():
            raise
