"""Predictions kept beside a run record, for tests that need the rows (DeLong's paired test).

``<record>.preds.npz`` (compressed) holds, per evaluation split, the click probabilities of the
restored best weights as float32 (``<split>_prob``) and the labels as uint8 (``<split>_y``), in row
order. A split with more than ``MAX_ROWS`` rows is left out (its key absent): reports then fall
back to seed-only statistics for it and say so. Written atomically, like the record.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from data.atomic import write_atomically

MAX_ROWS = 1_000_000  # per split: 4 MiB of float32, about the size of the record folder of a small data set
SPLITS = ("val", "test")


def predictions_path(record_path: Path) -> Path:
    """``name.json`` -> ``name.preds.npz`` in the same folder."""
    record_path = Path(record_path)
    return record_path.with_name(record_path.stem + ".preds.npz")


def write_predictions(record_path: Path, splits: dict[str, tuple], max_rows: int = MAX_ROWS) -> list[str]:
    """Store ``{split: (labels, probabilities)}`` beside ``record_path``; returns the splits kept.

    Splits above ``max_rows`` rows are skipped; nothing is written when none is kept.
    """
    arrays = {}
    for split, (y, prob) in splits.items():
        y, prob = np.asarray(y), np.asarray(prob)
        if y.shape != prob.shape or y.ndim != 1:
            raise ValueError(f"predictions of split {split!r}: labels {y.shape} and probabilities {prob.shape} "
                             "must be 1-D and of the same length")
        if len(y) <= max_rows:
            arrays[f"{split}_y"] = y.astype(np.uint8)
            arrays[f"{split}_prob"] = prob.astype(np.float32)
    kept = [s for s in splits if f"{s}_y" in arrays]
    if not kept:
        return kept
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomically(predictions_path(record_path), lambda staged: staged.write_bytes(buffer.getvalue()))
    return kept


def read_predictions(record_path: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(labels, probabilities)`` of ``split`` stored beside ``record_path``, or None when not stored."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    path = predictions_path(record_path)
    if not path.is_file():
        return None
    with np.load(path) as stored:
        if f"{split}_y" not in stored:
            return None
        return stored[f"{split}_y"], stored[f"{split}_prob"]
