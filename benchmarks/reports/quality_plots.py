"""Two plots per data set beside the leaderboard: reliability (calibration) and validation AUC against
training time, one line per model entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine import quality
from .common import plt

MARKERS = "os^Dv<>ph*"


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(Path(out_dir) / name, dpi=110)
    plt.close(fig)
    return name


def _legend(ax) -> None:
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)


def reliability_plot(predictions: dict[str, tuple], out_dir: Path, variant: str,
                     bins: int = quality.DEFAULT_BINS) -> str:
    """Observed click rate against mean predicted probability per equal-mass bin, every seed's test rows
    pooled per entry (``predictions``: label -> (labels ``[N]``, probabilities ``[S, N]``)); returns the file name."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    top = 0.0
    for i, (label, (y, probs)) in enumerate(predictions.items()):
        curve = quality.reliability(np.tile(y, len(probs)), probs.reshape(-1), bins)
        top = max(top, curve["predicted"].max(), curve["observed"].max())
        ax.plot(curve["predicted"], curve["observed"], marker=MARKERS[i % 10], color=f"C{i % 10}", label=label)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfect calibration")
    ax.set_xlabel(f"mean predicted click probability ({bins} equal-mass bins)")
    ax.set_ylabel("observed click rate")
    ax.set_title(f"{variant}: reliability on test (seeds pooled)")
    _legend(ax)
    return _save(fig, out_dir, f"{variant}_reliability.png")


def learning_curve_plot(histories: dict[str, list[dict]], out_dir: Path, variant: str) -> str:
    """Validation AUC at each evaluation against training seconds so far (evaluation excluded), one
    line per entry (``histories``: label -> one seed's ``fit`` history); returns the file name."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for i, (label, history) in enumerate(histories.items()):
        ax.plot([h["train_seconds"] for h in history], [h["val_auc"] for h in history],
                color=f"C{i % 10}", linestyle="-" if i < 10 else "--", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale, evaluation excluded)")
    ax.set_ylabel("validation AUC")
    ax.set_title(f"{variant}: validation AUC during training (first seed)")
    _legend(ax)
    return _save(fig, out_dir, f"{variant}_val_auc_vs_seconds.png")
