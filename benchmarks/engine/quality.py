"""What a fit's predictions and history say beyond AUC: calibration on a split and time to quality.

Pure functions of labels, probabilities and ``fit``'s evaluation history (numpy only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_BINS = 10
QUALITY_TOLERANCE = 0.001


def _probabilities(y, prob) -> tuple[np.ndarray, np.ndarray]:
    y, prob = np.asarray(y, dtype=float), np.asarray(prob, dtype=float)
    if y.ndim != 1 or prob.shape != y.shape:
        raise ValueError(f"probabilities of shape {prob.shape} do not match labels of shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(y)[:6].tolist()}")
    if not (np.isfinite(prob).all() and (prob >= 0).all() and (prob <= 1).all()):
        raise ValueError("probabilities must be finite and in [0, 1]")
    return y, prob


def reliability(y, prob, bins: int = DEFAULT_BINS) -> dict[str, np.ndarray]:
    """Equal-mass reliability curve: rows sorted by predicted probability, cut into ``bins`` groups
    of equal size (+-1 row; tied predictions may straddle a cut); per group the mean predicted
    probability, the observed click rate and the row count."""
    y, prob = _probabilities(y, prob)
    if not 1 <= bins <= len(y):
        raise ValueError(f"bins must be between 1 and the number of rows ({len(y)}), got {bins}")
    groups = np.array_split(np.argsort(prob, kind="stable"), bins)
    return {"predicted": np.array([prob[g].mean() for g in groups]),
            "observed": np.array([y[g].mean() for g in groups]),
            "count": np.array([len(g) for g in groups])}


def expected_calibration_error(y, prob, bins: int = DEFAULT_BINS) -> float:
    """``ECE = sum_b (n_b / N) |mean prob_b - click rate_b|`` over equal-mass bins (10 by default).

    Even a perfectly calibrated model scores above 0: each bin's click rate has sampling noise,
    about ``sqrt(2 / pi) sqrt(p (1 - p) bins / N)`` in expectation (0.009 at p = 0.5, 10 bins,
    20,000 rows), the reason for few, equally full bins.
    """
    curve = reliability(y, prob, bins)
    return float((curve["count"] * np.abs(curve["predicted"] - curve["observed"])).sum() / curve["count"].sum())


def calibration_ratio(y, prob) -> float:
    """Mean predicted click probability divided by the observed click rate (1 = calibrated on average)."""
    y, prob = _probabilities(y, prob)
    if not y.any():
        raise ValueError("calibration ratio: the labels hold no click, the observed rate is 0")
    return float(prob.mean() / y.mean())


def time_to_quality(history: Sequence[dict], tolerance: float = QUALITY_TOLERANCE) -> dict[str, float]:
    """Training seconds, epochs and steps at the first evaluation whose validation AUC is within
    ``tolerance`` of the run's best; ``history``: ``fit``'s evaluations in order, each with
    ``val_auc``, ``epoch``, ``step`` and ``train_seconds`` (training time so far, evaluation excluded)."""
    if not history:
        raise ValueError("time to quality: the evaluation history is empty")
    if tolerance < 0:
        raise ValueError(f"time to quality: tolerance must be >= 0, got {tolerance}")
    for i, entry in enumerate(history):
        missing = {"val_auc", "epoch", "step", "train_seconds"} - set(entry)
        if missing:
            raise ValueError(f"time to quality: history entry {i} lacks {sorted(missing)}; "
                             "histories recorded before training seconds were logged cannot give it")
    target = max(entry["val_auc"] for entry in history) - tolerance
    first = next(entry for entry in history if entry["val_auc"] >= target)
    return {"seconds": float(first["train_seconds"]), "epochs": float(first["epoch"]), "step": int(first["step"])}
