"""Why the first epochs are slower, one factor at a time, and where the time of a step goes.

``FACTORS``: each changes one thing of ours (the initialisation of the embedding table, the
learning rate, the batch size, BatchNorm) against ours as it is; every variant trains with the
bare loop of the time-to-quality section until validation AUC has not improved for
``quality_patience`` epochs, so its history is comparable with the peers' there.
``FACTOR_CASE`` is the family the study is run on (the issue's example: DCN-V2, where FuxiCTR
started ahead).

Every case's training step is profiled with ``torch.profiler`` (the top operators by self CPU
time over ``PROFILE_STEPS`` steps); the report shows the profile of each family with a target not met.
"""

from __future__ import annotations

import torch
from torch import nn

from .quality import best_auc, time_to_target

FACTOR_CASE = "dcn_v2"
FACTORS: dict[str, dict] = {
    "as is (Xavier-normal embeddings, lr 1e-3, batch 1024, BatchNorm)": {},
    "embeddings N(0, 1e-4^2), as FuxiCTR": {"embedding_init": "fuxictr"},
    "embeddings Xavier-uniform, as pytorch-fm": {"embedding_init": "xavier_uniform"},
    "embeddings N(0, 1), as nn.Embedding's default": {"embedding_init": "normal"},
    "lr 3e-3": {"lr": 3e-3},
    "batch 4096": {"batch_size": 4096},
    "no BatchNorm": {"hparams": {"batch_norm": False}},
}
PROFILE_STEPS = 30
PROFILE_TOP = 10


def initialise_embeddings(model: nn.Module, how: str) -> None:
    """Draw every ``nn.Embedding`` of ``model`` again as ``how`` says (``FACTORS``)."""
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    if not tables:
        raise ValueError(f"{type(model).__name__} has no nn.Embedding to initialise")
    with torch.no_grad():
        for weight in tables:
            if how == "fuxictr":
                nn.init.normal_(weight, std=1e-4)
            elif how == "xavier_uniform":
                nn.init.xavier_uniform_(weight)
            elif how == "normal":
                nn.init.normal_(weight)
            else:
                raise ValueError(f"embedding_init {how!r}; expected 'fuxictr', 'xavier_uniform' or 'normal'")


def factor_rows(histories: dict[str, list[dict]], peer_histories: dict[str, list[dict]]) -> dict:
    """The factor table: per variant its AUC after epoch 1, best AUC and epoch, and training seconds to the
    target (the best validation AUC of the fastest-to-it peer in the time-to-quality section, else of ours as
    it is), with the ratio against ours as it is."""
    as_is = histories[next(iter(FACTORS))]
    peers = {name: h for name, h in peer_histories.items() if name != "ours"}
    target = max((best_auc(h) for h in peers.values()), default=best_auc(as_is))
    base = time_to_target(as_is, target)
    rows = []
    for name, history in histories.items():
        reached = time_to_target(history, target)
        best_epoch = max(range(len(history)), key=lambda i: history[i]["val_auc"]) + 1
        rows.append({"factor": name, "epoch1_auc": history[0]["val_auc"], "best_auc": best_auc(history),
                     "best_epoch": best_epoch, "seconds": reached[0] if reached else None,
                     "epoch": reached[1] if reached else None,
                     "vs_as_is": base[0] / reached[0] if reached and base else None})
    return {"target_auc": target, "rows": rows}


def profile_table(step, steps: int = PROFILE_STEPS, top: int = PROFILE_TOP) -> list[dict]:
    """The ``top`` operators by self CPU time over ``steps`` calls of ``step()`` (after 3 warm-up calls)."""
    for _ in range(3):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [{"operator": e.key, "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
             "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps} for e in events[:top]]
