"""On-disk cache of raw downloads and processed data sets (kept outside git).

Root: ``$CTRBENCH_CACHE`` if set, else ``~/.cache/ctrbench``. Layout::

    raw/<name>/                  fetched raw files (``python -m data.fetch ml100k``)
    processed/<dataset>-<key>/   one encoded data set: {train,val,test}_{x,y}.npy,
                                 dataset.json (schema + audit), encoder.json/.npz
    checksums.json               remembered SHA-256 of large files, by path, size and mtime

``key`` hashes the checksums of the source files, every loader option and
``PIPELINE_VERSION``, so a changed file or option is processed afresh and an unchanged one
is read back in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

PIPELINE_VERSION = 1
_REMEMBER_CHECKSUM_ABOVE = 64 << 20


def cache_root() -> Path:
    """``$CTRBENCH_CACHE`` or ``~/.cache/ctrbench``."""
    return Path(os.environ.get("CTRBENCH_CACHE") or Path.home() / ".cache" / "ctrbench")


def raw_dir(name: str) -> Path:
    """Where ``python -m data.fetch`` puts the raw files of ``name``."""
    return cache_root() / "raw" / name


def file_checksum(path: Path) -> str:
    """SHA-256 of a file; for files over 64 MiB it is remembered by path, size and mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    if stat.st_size <= _REMEMBER_CHECKSUM_ABOVE:
        return _sha256(path)
    memo_path = cache_root() / "checksums.json"
    memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    stamp = [stat.st_size, stat.st_mtime_ns]
    entry = memo.get(str(path))
    if entry and entry["stamp"] == stamp:
        return entry["sha256"]
    digest = _sha256(path)
    memo[str(path)] = {"stamp": stamp, "sha256": digest}
    _write_text_atomically(memo_path, json.dumps(memo, indent=1))
    return digest


def processed_dir(dataset: str, **key_parts) -> Path:
    """Folder of the processed data set identified by ``key_parts`` (checksums, options)."""
    text = json.dumps({"dataset": dataset, "version": PIPELINE_VERSION, **key_parts}, sort_keys=True)
    return cache_root() / "processed" / f"{dataset}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def write_atomically(directory: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` into a fresh folder, then rename it to ``directory``."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        write(tmp)
        tmp.rename(directory)
    except OSError:
        if not directory.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
