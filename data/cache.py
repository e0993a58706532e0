"""On-disk cache of raw downloads and processed data sets (kept outside git): its layout,
and the code that writes and reads it.

Root: ``$CTRBENCH_CACHE`` if set, else ``~/.cache/ctrbench``. Layout::

    raw/<name>/                  fetched raw files (``python -m data.fetch ml100k``)
    processed/<dataset>-<key>/   one encoded data set: {train,val,test}_{x,y[,prob][,values]}.npy
                                 (``data.storage``), encoder.json/.npz, and last
                                 dataset.json (schema + audit), which marks it complete
    checksums.json               remembered SHA-256 of large files, by path, size and mtime

``key`` hashes the checksums of the source files, every option that changes the encoding, the
source's field specs (kind, bins, scaling) and ``PIPELINE_VERSION``, so a changed file or option
is processed afresh and an unchanged one is read back in seconds; a file that changed after it
was cached is encoded again, and the load says so (``changed_files``). A processed folder is
written whole or not at all (``data.atomic``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from .atomic import write_atomically
from .raw import DataError
from .schema import Dataset, Schema
from .splits import SPLITS
from .storage import read_split, resolve_storage

PIPELINE_VERSION = 3
_REMEMBER_CHECKSUM_ABOVE = 64 << 20
_CANNOT_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR)


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
    with _writing(memo_path.parent):
        write_atomically(memo_path, lambda staged: staged.write_text(json.dumps(memo, indent=1)))
    return digest


def processed_dir(dataset: str, **key_parts) -> Path:
    """Folder of the processed data set identified by ``key_parts`` (checksums, options)."""
    text = json.dumps({"dataset": dataset, "version": PIPELINE_VERSION, **key_parts}, sort_keys=True)
    return cache_root() / "processed" / f"{dataset}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def is_complete(directory: Path) -> bool:
    """Whether ``directory`` holds a processed data set that was written in full."""
    return (directory / "dataset.json").exists()


def write_processed(directory: Path, fill: Callable[[Path], None]) -> None:
    """Create ``directory`` from ``fill(folder)``, which writes ``dataset.json`` last; all or nothing.

    A cache that cannot be written (no permission, read-only, disk full) raises a one-line
    ``DataError`` naming the folder, and leaves no partial folder behind.
    """

    def write(staged: Path) -> None:
        staged.mkdir()
        fill(staged)

    with _writing(directory.parent):
        write_atomically(directory, write)


def read_processed(directory: Path, storage: str) -> Dataset:
    """The data set in ``directory``, its splits read as ``storage`` says (``data.storage``)."""
    meta = json.loads((directory / "dataset.json").read_text())
    schema = Schema.from_dict(meta["schema"])
    mode = resolve_storage(storage, meta["info"]["rows"]["train"], schema.num_fields)
    splits = {name: read_split(directory, name, mode) for name in SPLITS}
    info = {**meta["info"], "storage": mode}
    return Dataset(meta["name"], schema, splits["train"], splits["val"], splits["test"], info)


def changed_files(dataset: str, options: dict, checksums: dict[str, str], paths: dict[str, str]) -> list[str]:
    """Paths among ``paths`` that an earlier cache of ``dataset`` with the same options saw
    with another checksum: the file changed after it was cached."""
    changed = set()
    for meta_path in (cache_root() / "processed").glob(f"{dataset}-*/dataset.json"):
        info = json.loads(meta_path.read_text())["info"]
        if info.get("options") != options or info.get("files") != paths:
            continue
        changed.update(paths[name] for name, digest in info["checksum"].items() if checksums.get(name) != digest)
    return sorted(changed)


@contextmanager
def _writing(folder: Path):
    """Turn a failure to write into ``folder`` (permission, read-only, disk full) into a DataError."""
    try:
        yield
    except OSError as err:
        if err.errno not in _CANNOT_WRITE:
            raise
        raise DataError(f"cannot write the cache folder {folder}: {err.strerror}; free space there "
                        "or set CTRBENCH_CACHE to a writable folder") from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
