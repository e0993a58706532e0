"""Was the CPU shared while a figure was timed? Process CPU time against wall time, and the machine load.

``share = cpu_seconds / (wall_seconds * threads)``: near 1 when the run had its threads' cores, lower
when other processes took them. ``load`` is ``os.getloadavg()``'s 1-minute figure at the start and the
end. A measurement is flagged ``shared`` when the load exceeded the cores by more than ``LOAD_MARGIN``
(more runnable threads than cores: someone waited) or the share fell below ``MIN_SHARE``.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

LOAD_MARGIN = 0.5
MIN_SHARE = 0.5


@contextmanager
def watch(threads: int):
    """Yield a dict that is filled, when the block ends, with the block's CPU share and load."""
    result: dict = {}
    load_start = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    yield result
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    load = [load_start, os.getloadavg()[0]]
    cores = os.cpu_count() or 1
    share = cpu / (wall * threads) if wall > 0 else 1.0
    result.update(cpu_seconds=cpu, wall_seconds=wall, share=share, load=load, cores=cores,
                  shared=bool(max(load) > cores + LOAD_MARGIN or share < MIN_SHARE))
