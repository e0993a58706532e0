"""Time to quality: training seconds each implementation needs to reach a common validation AUC.

A history is the list of epochs of one training run, each ``{"seconds": s, "val_auc": a}`` with
``s`` the training seconds since the start (evaluations excluded). For ours against one peer the
target is the lower of the two best validation AUCs, so both reach it; each implementation's
time to the target is the cumulative training seconds at the end of its first epoch whose
validation AUC is at least the target (epoch granularity, no interpolation). The ratio
``peer seconds / our seconds`` is how many times faster ours gets there (above 1: ours first).
"""

from __future__ import annotations


def check_history(history: list[dict], name: str) -> None:
    """Raise ValueError naming ``name`` unless ``history`` is non-empty with rising seconds and AUCs in [0, 1]."""
    if not history:
        raise ValueError(f"history of {name} is empty; expected one entry per epoch")
    previous = 0.0
    for epoch, row in enumerate(history, start=1):
        if not {"seconds", "val_auc"} <= row.keys():
            raise ValueError(f"history of {name}, epoch {epoch}: keys {sorted(row)}; expected 'seconds' and 'val_auc'")
        if row["seconds"] < previous:
            raise ValueError(f"history of {name}, epoch {epoch}: seconds {row['seconds']} below the previous "
                             f"{previous}; expected cumulative training seconds")
        if not 0.0 <= row["val_auc"] <= 1.0:
            raise ValueError(f"history of {name}, epoch {epoch}: val_auc {row['val_auc']}; expected within [0, 1]")
        previous = row["seconds"]


def best_auc(history: list[dict]) -> float:
    return max(row["val_auc"] for row in history)


def time_to_target(history: list[dict], target: float) -> tuple[float, int] | None:
    """(training seconds, epoch) at the end of the first epoch with validation AUC >= ``target``; None if never."""
    check_history(history, "the run")
    for epoch, row in enumerate(history, start=1):
        if row["val_auc"] >= target:
            return row["seconds"], epoch
    return None


def time_to_quality(ours: list[dict], peer: list[dict]) -> dict:
    """Ours against one peer at the common target (the lower best validation AUC): seconds, epochs, ratio."""
    check_history(ours, "ours")
    check_history(peer, "the peer")
    target = min(best_auc(ours), best_auc(peer))
    (ours_s, ours_epoch), (peer_s, peer_epoch) = time_to_target(ours, target), time_to_target(peer, target)
    return {"target_auc": target, "ours_seconds": ours_s, "ours_epoch": ours_epoch, "ours_best_auc": best_auc(ours),
            "peer_seconds": peer_s, "peer_epoch": peer_epoch, "peer_best_auc": best_auc(peer),
            "speedup": peer_s / ours_s if ours_s > 0 else float("inf")}
