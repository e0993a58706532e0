"""Evaluation metrics: thin wrappers over scikit-learn with clear errors."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score


def _as_numpy(v) -> np.ndarray:
    return v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)


def evaluate(y, prob, split: str = "evaluation") -> dict[str, float]:
    """``{"auc", "logloss"}`` of click probabilities ``prob`` against 0/1 labels ``y``.

    AUC is undefined when ``y`` holds one class only: that raises a ValueError naming
    ``split`` rather than returning a misleading number.
    """
    y, prob = _as_numpy(y), _as_numpy(prob)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"AUC is undefined on split {split!r}: all {len(y)} labels are {classes.tolist()}; "
            "an evaluation split needs both clicks (1) and non-clicks (0)"
        )
    if not np.isfinite(prob).all():
        raise ValueError(f"split {split!r}: predictions contain NaN or inf")
    return {
        "auc": float(roc_auc_score(y, prob)),
        "logloss": float(log_loss(y, np.clip(prob, 1e-7, 1 - 1e-7), labels=[0, 1])),
    }
