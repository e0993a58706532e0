"""The leaderboard's uncertainty: per-row intervals and "≈ best" marks from stored predictions.

A row is one model entry over its seeds. With every seed's predictions stored beside its record
(:mod:`benchmarks.harness.predictions`), the row's interval combines seed and test-set noise
(:func:`benchmarks.reports.stats.mean_auc_interval`) and its mark comes from the paired DeLong comparison
with the best row, Holm-corrected over the rows (:func:`benchmarks.reports.stats.close_to_best`). Rows
whose predictions are missing (splits above the size limit, older records) fall back to seed-only
statistics, flagged ``"basis": "seeds"``, and get no paired mark.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import stats as sps

from ..harness.predictions import read_predictions
from ..harness.records import record_path
from . import stats

ALPHA = 0.05
LEVEL = 0.95


def row_predictions(out_dir: Path, runs: list[dict], split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels ``[N]`` and the ok seeds' probabilities ``[S, N]`` of ``split``; None when any seed lacks them."""
    found = [read_predictions(record_path(out_dir, r["key"]), split) for r in runs if r["status"] == "ok"]
    if not found or any(f is None for f in found):
        return None
    labels = found[0][0]
    if any(not np.array_equal(y, labels) for y, _ in found):
        raise ValueError(f"stored {split} labels differ between seeds of {runs[0]['label']!r}; "
                         "their records come from different data")
    return labels, np.stack([p for _, p in found])


def row_interval(runs: list[dict], predictions, split: str, level: float = LEVEL) -> dict | None:
    """Mean AUC of ``split`` over the ok seeds with its ``level`` interval; None without an ok seed.

    From the predictions when given (seed + test-set noise, ``"basis": "seeds+test"``); else
    ``mean +- t_{S-1} s / sqrt(S)`` over the seeds' AUCs (``"basis": "seeds"``; zero width for one seed).
    """
    aucs = np.array([r["metrics"][f"{split}_auc"] for r in runs if r["status"] == "ok"])
    if not len(aucs):
        return None
    if predictions is not None:
        y, probs = predictions
        return stats.mean_auc_interval(y, probs, level) | {"basis": "seeds+test"}
    half = float(sps.t.ppf((1 + level) / 2, len(aucs) - 1) * aucs.std(ddof=1) / math.sqrt(len(aucs))) \
        if len(aucs) > 1 else 0.0
    mean = float(aucs.mean())
    return {"mean": mean, "low": mean - half, "high": mean + half, "seeds": len(aucs), "basis": "seeds"}


def paired_marks(predictions: dict[str, tuple | None], alpha: float = ALPHA) -> dict[str, dict | None]:
    """Per label, :func:`benchmarks.reports.stats.close_to_best` among the rows that have predictions (None for the
    others); the rows compared must hold the same labelled rows."""
    present = {label: p for label, p in predictions.items() if p is not None}
    marks: dict[str, dict | None] = dict.fromkeys(predictions)
    if not present:
        return marks
    first, (y, _) = next(iter(present.items()))
    for label, (labels, _) in present.items():
        if not np.array_equal(labels, y):
            raise ValueError(f"rows {first!r} and {label!r} were scored on different rows; "
                             "a paired comparison needs the same test set")
    return marks | stats.close_to_best(y, {label: probs for label, (_, probs) in present.items()}, alpha)


def interval_text(interval: dict | None, digits: int = 4) -> str:
    """``0.7421 [0.7360, 0.7482]``, with ``*`` where the interval is seed-only."""
    if interval is None:
        return ""
    star = "*" if interval["basis"] == "seeds" else ""
    return f"{interval['mean']:.{digits}f} [{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]{star}"
