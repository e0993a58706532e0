"""Low-rank evidence for full-rank cross layers: singular-value spectra and rank truncation.

A measurement a config turns on (``[measure] spectrum = true``); the sweep runs it after ``fit``.

The reference study plots the min-max normalised singular values of each DCN-V2 cross
matrix W at initialisation and after training. This module makes "low rank" measurable:

- energy share of the top r singular values: ``sum_{i<=r} s_i^2 / sum_i s_i^2``;
- effective rank (Roy & Vetterli): ``exp(H(p))`` with ``p_i = s_i / sum_j s_j``;
- the decisive test: replace every trained W by its best rank-r approximation
  (truncated SVD, Eckart-Young) without retraining and measure the validation AUC.
"""

from __future__ import annotations

import torch

from data import Dataset

from .fit import predict
from .metrics import evaluate

RANKS = (8, 16, 32, 80)


def cross_weights(model: torch.nn.Module) -> list[torch.nn.Parameter] | None:
    """The full-rank cross matrices of ``model`` in layer order, or None when it has none."""
    net = getattr(model, "cross_net", None)
    return net.cross_weights() if hasattr(net, "cross_weights") else None


def snapshot(model: torch.nn.Module) -> list[torch.Tensor] | None:
    """Copies of the cross matrices (taken before training, for the init spectrum)."""
    weights = cross_weights(model)
    return None if weights is None else [w.detach().clone() for w in weights]


def singular_values(w: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(w.detach().double())


def min_max(s: torch.Tensor) -> torch.Tensor:
    """The study's normalisation: the largest value maps to 1, the smallest to 0."""
    return (s - s.min()) / (s.max() - s.min())


def energy_share(s: torch.Tensor, r: int) -> float:
    return float((s[:r] ** 2).sum() / (s**2).sum())


def effective_rank(s: torch.Tensor) -> float:
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def truncate(w: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-``r`` approximation of ``w`` in Frobenius norm."""
    u, s, vh = torch.linalg.svd(w.detach().double(), full_matrices=False)
    return ((u[:, :r] * s[:r]) @ vh[:r]).to(w.dtype)


def spectrum_summary(s: torch.Tensor, ranks=RANKS) -> dict:
    return {
        "singular_values": s.tolist(),
        "energy_share": {str(r): energy_share(s, r) for r in ranks},
        "effective_rank": effective_rank(s),
    }


@torch.no_grad()
def truncation_aucs(model: torch.nn.Module, dataset: Dataset, ranks=RANKS) -> dict[str, float]:
    """Validation AUC with every cross matrix replaced by its rank-r truncation, per r; weights restored after."""
    weights = cross_weights(model)
    original = [w.detach().clone() for w in weights]
    aucs = {"full": evaluate(dataset.val.y, predict(model, dataset.val), "val")["auc"]}
    for r in ranks:
        for w, w0 in zip(weights, original, strict=True):
            w.copy_(truncate(w0, r))
        aucs[str(r)] = evaluate(dataset.val.y, predict(model, dataset.val), "val")["auc"]
    for w, w0 in zip(weights, original, strict=True):
        w.copy_(w0)
    return aucs


def analyze(model: torch.nn.Module, init: list[torch.Tensor], dataset: Dataset, ranks=RANKS) -> dict:
    """Spectra at init and after training, per layer, plus the truncation test."""
    learned = cross_weights(model)
    return {
        "ranks": list(ranks),
        "layers": [{"init": spectrum_summary(singular_values(w0), ranks),
                    "learned": spectrum_summary(singular_values(w), ranks)}
                   for w0, w in zip(init, learned, strict=True)],
        "truncated_val_auc": truncation_aucs(model, dataset, ranks),
    }
