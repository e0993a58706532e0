"""Process and numeric settings of training and inference: precisions, malloc levers, the optimizer.

The lever defaults (:data:`LEVERS`) are what ``python -m benchmarks.speed`` measured best (see
results/speed.md); every lever is a keyword of ``fit`` and is recorded in each run's key.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

import torch

PRECISIONS = ("fp32", "bf16")
LEVERS = {"precision": "fp32", "fused_adam": True, "retain_memory": True}  # fit keywords and their defaults
LATENCY_LEVERS = ("precision", "retain_memory")  # the levers the latency probe takes too
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def set_malloc_thresholds(mmap_bytes: int, trim_bytes: int) -> bool:
    """glibc ``mallopt``: blocks from ``mmap_bytes`` up are mmap-ed (and unmapped when freed), and free memory
    above ``trim_bytes`` at the heap top goes back to the OS. Process-wide; False where malloc is not glibc's."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_bytes) and libc.mallopt(_M_TRIM_THRESHOLD, trim_bytes))
    except (OSError, AttributeError, TypeError):
        return False


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    By default every temporary above a few MiB (an FFM batch, an evaluation batch) is a fresh
    mmap whose pages fault in one by one, on every step; with both thresholds at 1 GiB they are
    reused from the heap. Process-wide and idempotent; returns False where malloc is not glibc's.
    """
    return set_malloc_thresholds(1 << 30, 1 << 30)


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """``"bf16"``: matrix products in bfloat16 through CPU autocast; ``"fp32"``: nothing changes."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.0, fused: bool = True, **adam):
    """Adam over the parameters of ``model``; ``fused``: one kernel for all parameters instead of a loop
    over them; ``adam``: further ``torch.optim.Adam`` options (e.g. ``foreach``)."""
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None, **adam)
