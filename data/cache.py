"""On-disk cache of raw downloads and processed data sets (kept outside git): its layout,
and the code that writes and reads it.

Root: ``$CTRBENCH_CACHE`` if set, else ``~/.cache/ctrbench``. Layout::

    raw/<name>/                  fetched raw files (``python -m data.fetch ml100k``)
    processed/<dataset>-<key>/   one encoded data set: {train,val,test}_{x,y}.npy,
                                 dataset.json (schema + audit), encoder.json/.npz
    checksums.json               remembered SHA-256 of large files, by path, size and mtime

``key`` hashes the checksums of the source files, every option that changes the encoding and
``PIPELINE_VERSION``, so a changed file or option is processed afresh and an unchanged one
is read back in seconds. A processed folder is written whole or not at all
(``data.atomic``); ``dataset.json`` marks it complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .atomic import write_atomically
from .encoding import Encoder
from .schema import Dataset, Schema, Split
from .splits import SPLITS

PIPELINE_VERSION = 2
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
    write_atomically(memo_path, lambda staged: staged.write_text(json.dumps(memo, indent=1)))
    return digest


def processed_dir(dataset: str, **key_parts) -> Path:
    """Folder of the processed data set identified by ``key_parts`` (checksums, options)."""
    text = json.dumps({"dataset": dataset, "version": PIPELINE_VERSION, **key_parts}, sort_keys=True)
    return cache_root() / "processed" / f"{dataset}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def is_complete(directory: Path) -> bool:
    """Whether ``directory`` holds a processed data set that was written in full."""
    return (directory / "dataset.json").exists()


def write_processed(directory: Path, dataset: Dataset, encoder: Encoder) -> None:
    """Write ``dataset`` and its fitted ``encoder`` to ``directory``, atomically."""

    def write(staged: Path) -> None:
        staged.mkdir()
        for name, split in dataset.splits().items():
            np.save(staged / f"{name}_x.npy", split.x.numpy())
            np.save(staged / f"{name}_y.npy", split.y.numpy())
        encoder.save(staged)
        meta = {"name": dataset.name, "schema": dataset.schema.to_dict(), "info": dataset.info}
        (staged / "dataset.json").write_text(json.dumps(meta, indent=1))

    write_atomically(directory, write)


def read_processed(directory: Path) -> Dataset:
    """The data set that ``write_processed`` left in ``directory``."""
    meta = json.loads((directory / "dataset.json").read_text())
    splits = {
        name: Split(torch.from_numpy(np.load(directory / f"{name}_x.npy")),
                    torch.from_numpy(np.load(directory / f"{name}_y.npy")))
        for name in SPLITS
    }
    schema = Schema.from_dict(meta["schema"])
    return Dataset(meta["name"], schema, splits["train"], splits["val"], splits["test"], meta["info"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
