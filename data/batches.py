"""Batch iteration over a Split: slices of a permuted copy held in memory."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .schema import Split


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x [B, F], y [B])`` covering every row exactly once.

    With ``shuffle`` the rows are permuted once (one gather, seeded by ``generator``) and
    the batches are contiguous views of the permuted copy: no per-row Python work. The last
    batch may be smaller.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x, y = split.x, split.y
    if shuffle:
        order = torch.randperm(len(split), generator=generator)
        x, y = x[order], y[order]
    for start in range(0, len(split), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def num_batches(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)
