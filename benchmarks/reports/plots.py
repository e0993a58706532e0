"""The leaderboard's plots: test AUC against parameters and against latency, one file each.

Points are labelled by name beside them (no legend to match), the oracle's AUC is a dashed line,
and the AUC axis spans the band the families occupy: a row far below it (e.g. LR) is drawn as a
marker on the bottom edge with its value in its label, so it does not squash the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import plt

FAR_OFF = 3.0  # a row more than this many band widths below the median is drawn on the edge


def auc_band(aucs: list[float], oracle: float | None) -> tuple[float, float]:
    """(low, high) of the AUC axis: the rows within ``FAR_OFF`` band widths of the median, and the oracle."""
    a = np.asarray(aucs, dtype=float)
    median = float(np.median(a))
    spread = max(float(np.percentile(a, 75) - np.percentile(a, 25)), 1e-3)
    near = a[a >= median - FAR_OFF * spread]
    top = max(near.max(), oracle if oracle is not None else -np.inf)
    pad = 0.08 * max(top - near.min(), 1e-3)
    return float(near.min() - pad), float(top + pad)


def _spread(points: list[tuple[float, float, str]], gap: float) -> list[tuple[float, float, float, str]]:
    """(x, y, label y, label): label heights moved apart by at least ``gap``, in order of y."""
    out, last = [], -np.inf
    for x, y, label in sorted(points, key=lambda p: p[1]):
        last = max(y, last + gap)
        out.append((x, y, last, label))
    return out


def plot(rows: list[dict], out_dir: Path, variant: str, batch: str, oracle: float | None = None) -> list[str]:
    """Test AUC vs parameters and vs latency at ``batch`` (log x, seed error bars); returns file names."""
    ok = [r for r in rows if "test_auc" in r]
    low, high = auc_band([r["test_auc"][0] for r in ok], oracle)
    names = []
    for kind, xlabel, xs in [
        ("params", "trainable parameters", [r["params"] for r in ok]),
        ("latency", f"forward latency at batch {batch} (ms)", [r["latency"].get(batch, np.nan) for r in ok]),
    ]:
        fig, ax = plt.subplots(figsize=(9, 5.2))
        placed = []
        for i, (r, x) in enumerate(zip(ok, xs, strict=True)):
            y, err = r["test_auc"]
            label = r["label"]
            if y < low:  # far below the band: on the edge, value in the label
                y, label = low, f"{label} ({y:.3f}, below the axis)"
                ax.plot(x, y, marker="v", markersize=9, color="0.4", clip_on=False)
            else:
                ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, color=f"C{i % 10}")
            placed.append((x, y, label))
        for x, y, text_y, label in _spread(placed, 0.045 * (high - low)):
            ax.annotate(label, (x, y), xytext=(x * 1.25, text_y), fontsize=8, va="center",
                        arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6})
        if oracle is not None:
            ax.axhline(oracle, color="0.3", linestyle="--", linewidth=1)
            ax.annotate(f"oracle {oracle:.4f}", (0.01, oracle), xycoords=("axes fraction", "data"),
                        xytext=(0, 3), textcoords="offset points", fontsize=8, color="0.3")
        ax.set_ylim(low, high)
        ax.set_xscale("log")
        ax.set_xlim(right=ax.get_xlim()[1] * 12)  # room for the labels right of the points
        ax.set_xlabel(xlabel + " (log scale)")
        ax.set_ylabel("test AUC (mean ± std over seeds)")
        ax.set_title(f"{variant}: test AUC vs {kind}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"{variant}_auc_vs_{kind}.png"
        fig.savefig(Path(out_dir) / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names
