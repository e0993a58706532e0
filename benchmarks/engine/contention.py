"""Was the CPU shared while a figure was timed? Other processes' CPU time, and the machine load.

Around the timed block: the machine's busy CPU time (``/proc/stat``, all cores) minus this
process's own CPU time is what others used; ``others = that / (wall_seconds * cores)`` is the
fraction of the machine they took. ``load`` is ``os.getloadavg()``'s 1-minute figure at the
start and the end. A measurement is flagged ``shared`` when others took more than
``MAX_OTHERS`` of the machine (blocks of at least ``MIN_WALL`` seconds: the kernel counts in
ticks of 10 ms) or the load exceeded the cores by more than ``LOAD_MARGIN`` (more runnable
threads than cores: someone waited).

This process's own share of its threads (``share = cpu_seconds / (wall_seconds * threads)``) is
recorded but does not flag: small models do not keep two threads busy on an idle machine either.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

LOAD_MARGIN = 0.5
MAX_OTHERS = 0.25
MIN_WALL = 0.2


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (``/proc/stat``), or None where it cannot be read."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@contextmanager
def watch(threads: int):
    """Yield a dict that is filled, when the block ends, with the block's CPU figures and the load."""
    result: dict = {}
    load_start = os.getloadavg()[0]
    busy = machine_busy_seconds()
    cpu, wall = time.process_time(), time.perf_counter()
    yield result
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    busy_end = machine_busy_seconds()
    load = [load_start, os.getloadavg()[0]]
    cores = os.cpu_count() or 1
    others = None
    if busy is not None and busy_end is not None and wall >= MIN_WALL:
        others = max(0.0, busy_end - busy - cpu) / (wall * cores)
    share = cpu / (wall * threads) if wall > 0 else 1.0
    result.update(cpu_seconds=cpu, wall_seconds=wall, share=share, others=others, load=load, cores=cores,
                  shared=bool(max(load) > cores + LOAD_MARGIN or (others is not None and others > MAX_OTHERS)))
