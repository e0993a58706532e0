"""Batch iteration over a Split: the one seam through which training, evaluation and the
latency probe read rows, whether the split is in memory or memory-mapped, with values
(``Features``) or without.

In memory: with ``shuffle``, the rows are permuted once (one gather, seeded by
``generator``) and the batches are contiguous views of the permuted copy.

Memory-mapped (``split.disk`` set, see ``data.storage``): the split is cut into blocks of
``BLOCK_ROWS`` contiguous rows. With ``shuffle``, the blocks are visited in a seeded random
order, ``SHUFFLE_BLOCKS`` of them at a time are read into a buffer, and the buffer's rows are
permuted before being cut into batches (rows left over continue into the next buffer). Every
row is seen exactly once per epoch. A batch then mixes rows from up to ``SHUFFLE_BLOCKS``
random stretches of ``BLOCK_ROWS`` rows each (a shuffle window of ``BLOCK_ROWS *
SHUFFLE_BLOCKS`` rows, about 0.5M rows, ~80 MB of int32 indices at 39 fields), rather than from
the whole split: rows that sit close together in the file (a time-ordered log) stay somewhat
correlated within an epoch, and the block order changes every epoch. Without ``shuffle``, the
rows are read in order, one batch at a time. Only the blocks in flight are held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .schema import Features, Split

BLOCK_ROWS = 1 << 16
SHUFFLE_BLOCKS = 8


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y [B])`` covering every row exactly once; the last batch may be smaller.

    ``x`` is the index tensor ``[B, F]``, or ``Features`` (indices and values) when the split has values.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if split.disk is not None:
        yield from _disk_batches(split, batch_size, shuffle, generator)
        return
    x = split.x if split.values is None else Features(split.x, split.values)
    y = split.y
    if shuffle:
        order = torch.randperm(len(split), generator=generator)
        x, y = x[order], y[order]
    for start in range(0, len(split), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def num_batches(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)


def _disk_batches(split: Split, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    n = len(split)
    if not shuffle:
        for start in range(0, n, batch_size):
            yield split.disk.rows(start, min(start + batch_size, n))
        return
    blocks = torch.randperm(-(-n // BLOCK_ROWS), generator=generator).tolist()
    x_left, y_left = split.disk.rows(0, 0)
    for first in range(0, len(blocks), SHUFFLE_BLOCKS):
        read = [split.disk.rows(b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, n))
                for b in blocks[first : first + SHUFFLE_BLOCKS]]
        order = torch.randperm(sum(len(y) for _, y in read), generator=generator)
        x = _cat([x_left, _cat([x for x, _ in read])[order]])
        y = torch.cat([y_left, torch.cat([y for _, y in read])[order]])
        full = len(y) - len(y) % batch_size
        for start in range(0, full, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        x_left, y_left = x[full:], y[full:]
    if len(y_left):
        yield x_left, y_left


def _cat(parts: list) -> torch.Tensor | Features:
    """Rows of ``parts`` (index tensors, or ``Features``) one after the other."""
    if isinstance(parts[0], Features):
        return Features(torch.cat([p.index for p in parts]), torch.cat([p.value for p in parts]))
    return torch.cat(parts)
