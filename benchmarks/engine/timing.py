"""The one timing loop: wall-clock milliseconds of repeated calls of a no-argument function."""

from __future__ import annotations

import time
from collections.abc import Callable


def call_ms(fn: Callable[[], object], calls: int = 1) -> float:
    """Mean wall-clock ms per call over ``calls`` back-to-back calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def timings_ms(fn: Callable[[], object], warmup: int, repeats: int, calls: int = 1) -> list[float]:
    """``repeats`` timings (ms per call, each over ``calls`` calls) after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [call_ms(fn, calls) for _ in range(repeats)]


def median(values: list[float]) -> float:
    """The middle value (the upper one of an even count), as the reports have always quoted it."""
    return sorted(values)[len(values) // 2]


def median_ms(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median ms of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    return median(timings_ms(fn, warmup, repeats))


def interleaved_ms(variants: dict[str, Callable[[], object]], rounds: int, calls: int, warmup: int = 3) -> dict:
    """Median ms per call of each variant, timed in interleaved blocks of ``calls`` calls over ``rounds`` rounds
    (at least 3), so that drift of the machine hits every variant alike."""
    for fn in variants.values():
        timings_ms(fn, warmup, 0)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(max(rounds, 3)):
        for key, fn in variants.items():
            times[key].append(call_ms(fn, calls))
    return {k: median(v) for k, v in times.items()}
