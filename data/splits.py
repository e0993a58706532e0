"""Split assignment: each record goes to train, val or test by a seeded hash of its id."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def assign_splits(record_ids: np.ndarray, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """Split of each record (0 train, 1 val, 2 test) from a seeded hash of its id.

    Each record lands in train / val / test with probabilities ``fractions``, whatever the
    chunking, the other records or ``rows``: split sizes are binomial around the fractions.
    """
    mixed = _splitmix64(np.asarray(record_ids).astype(np.uint64) ^ _splitmix64(np.array([seed], np.uint64)))
    uniform = (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(np.cumsum(fractions[:2]), uniform, side="right").astype(np.int8)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
