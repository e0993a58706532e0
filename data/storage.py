"""Encoded splits on disk: ``.npy`` arrays written row block by row block, read whole into
memory or memory-mapped.

Each split is ``<split>_x.npy`` (global indices ``[N, F]``, int32, or int64 when a schema has
2**31 or more features), ``<split>_y.npy`` (labels ``[N]``, float32 0/1) and, when the source
knows it, ``<split>_prob.npy`` (the true click probability ``[N]``, float32) and, when the
schema has numeric fields, ``<split>_values.npy`` (the value of every field ``[N, F]``, float32;
see ``data.schema.Features``). ``.npy`` was chosen over Arrow IPC and Parquet because a fixed-width
row-major array is what training reads: row ``i`` is at a computable byte offset, so a block of
rows is one contiguous read with no decoding, and numpy maps it without any extra dependency.

``storage`` selects how a split is read back:

* ``"memory"``: the arrays are loaded into RAM (``x`` as int64), as for every small data set;
* ``"mmap"``: ``x``, ``y``, ``prob`` and ``values`` are memory maps, and ``Split.disk`` says where the
  files are, so that ``data.batches`` reads blocks of rows with plain file reads (resident
  memory stays bounded by the blocks in flight, not by the rows);
* ``"auto"``: ``"mmap"`` when the training split would take more than ``AUTO_MMAP_BYTES`` in
  memory as int64, else ``"memory"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib import format as npy_format
from numpy.lib.format import read_array_header_1_0, read_array_header_2_0, read_magic

from .schema import Features, Split
from .splits import SPLITS

STORAGES = ("auto", "memory", "mmap")
AUTO_MMAP_BYTES = 1 << 30


def resolve_storage(storage: str, train_rows: int, num_fields: int) -> str:
    """``"memory"`` or ``"mmap"`` for ``storage`` (one of ``STORAGES``)."""
    if storage == "auto":
        return "mmap" if train_rows * num_fields * 8 > AUTO_MMAP_BYTES else "memory"
    return storage


def index_dtype(num_features: int) -> np.dtype:
    """int32 unless a global index needs more bits."""
    return np.dtype(np.int32 if num_features < 2**31 else np.int64)


@dataclass(frozen=True)
class OnDisk:
    """The ``.npy`` files of a memory-mapped split; ``rows(a, b)`` reads rows ``a .. b-1``."""

    x: Path
    y: Path
    values: Path | None = None

    def rows(self, start: int, stop: int) -> tuple[torch.Tensor | Features, torch.Tensor]:
        """``(x, y [n] float32)`` of rows ``start .. stop - 1``, read from the files: ``x`` is the
        indices ``[n, F]`` int64, or ``Features`` with the values when the split has them."""
        x = _read_rows(self.x, start, stop).long()
        if self.values is not None:
            x = Features(x, _read_rows(self.values, start, stop))
        return x, _read_rows(self.y, start, stop)


def _read_rows(path: Path, start: int, stop: int) -> torch.Tensor:
    offset, dtype, shape = _header(path)
    width = int(np.prod(shape[1:], dtype=np.int64))
    values = np.fromfile(path, dtype=dtype, count=(stop - start) * width,
                         offset=offset + start * width * dtype.itemsize)
    return torch.from_numpy(values.reshape(stop - start, *shape[1:]))


def _header(path: Path) -> tuple[int, np.dtype, tuple[int, ...]]:
    with open(path, "rb") as f:
        version = read_magic(f)
        shape, _, dtype = (read_array_header_1_0 if version == (1, 0) else read_array_header_2_0)(f)
        return f.tell(), dtype, shape


class SplitWriter:
    """Writes the three splits of known sizes into ``folder``, appending rows chunk by chunk.

    Each array is a ``.npy`` file whose header (the final shape) is written first and whose rows are
    then appended with plain file writes, not through a memory map: pages written through a map stay
    in the writer's resident set until they are flushed and dropped, so a map grows the process with
    the rows; written pages go to the page cache, which the kernel evicts as it needs.
    """

    def __init__(self, folder: Path, rows, num_fields: int, num_features: int, with_prob: bool,
                 with_values: bool = False):
        self.rows = np.asarray(rows, np.int64)
        self.filled = np.zeros(3, np.int64)
        parts = {"x": (index_dtype(num_features), (num_fields,)), "y": (np.dtype(np.float32), ())}
        if with_prob:
            parts["prob"] = (np.dtype(np.float32), ())
        if with_values:
            parts["values"] = (np.dtype(np.float32), (num_fields,))
        self.files = [{part: _NpyAppender(folder / f"{split}_{part}.npy", dtype, (int(n), *width))
                       for part, (dtype, width) in parts.items()}
                      for split, n in zip(SPLITS, self.rows, strict=True)]

    def append(self, split: int, x: np.ndarray, y: np.ndarray, prob: np.ndarray | None,
               values: np.ndarray | None = None) -> None:
        arrays = {"x": x, "y": y, "prob": prob, "values": values}
        for part, file in self.files[split].items():
            file.append(arrays[part])
        self.filled[split] += len(y)

    def flush(self) -> None:
        """Close every file (each split must have got exactly its rows)."""
        assert (self.filled == self.rows).all(), "the second pass wrote other row counts than the first counted"
        for files in self.files:
            for file in files.values():
                file.close()


class _NpyAppender:
    """A ``.npy`` file of a known shape filled by appending rows in order."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.dtype = dtype
        self.file = open(path, "wb")  # noqa: SIM115 -- closed by close(), after the last chunk
        header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        npy_format.write_array_header_2_0(self.file, header)

    def append(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).data)

    def close(self) -> None:
        self.file.close()


def read_split(folder: Path, name: str, storage: str) -> Split:
    """Split ``name`` from ``folder``, in memory (``x`` int64) or memory-mapped (see the module)."""
    paths = {part: folder / f"{name}_{part}.npy" for part in ("x", "y", "prob", "values")}
    if storage == "memory":
        x = torch.from_numpy(np.load(paths["x"]).astype(np.int64, copy=False))
        arrays = {part: torch.from_numpy(np.load(p)) for part, p in paths.items() if part != "x" and p.exists()}
        return Split(x, arrays["y"], arrays.get("prob"), values=arrays.get("values"))
    maps = {part: torch.from_numpy(np.load(p, mmap_mode="c")) for part, p in paths.items() if p.exists()}
    disk = OnDisk(paths["x"], paths["y"], paths["values"] if "values" in maps else None)
    return Split(maps["x"], maps["y"], maps.get("prob"), disk=disk, values=maps.get("values"))
