"""The embedded default data set: a planted click model that mimics the reference study.

Ten one-hot categorical fields with 72 features in all (user side: age, gender,
membership years, city tier, device; item side: category, origin, brand, price band,
channel). Feature frequencies are skewed (Zipf-like). The true click logit is

    logit = b + sum_f w[x_f] + sum_{(f,g) in P} W_fg[x_f, x_g] + sum_{(f,g,h) in T} T_fgh[x_f, x_g, x_h]

with Gaussian effects of standard deviations ``first_order``, ``pair_strength`` and
``triple_strength`` on ``num_pairs`` random field pairs and ``num_triples`` random field
triples; ``b`` is set so that the mean click probability is ``positive_rate``. Labels are
Bernoulli draws, so even the true probabilities (kept in ``Split.prob``) have an AUC
clearly below 1: that oracle is the ceiling no model beats in expectation.
"""

from __future__ import annotations

import itertools

import torch

from .registry import register
from .schema import Dataset, Field, Schema, Split

DEFAULT_FIELDS = (
    ("age", 7),
    ("gender", 2),
    ("membership_years", 6),
    ("city_tier", 5),
    ("device", 8),
    ("category", 12),
    ("origin", 5),
    ("brand", 12),
    ("price_band", 9),
    ("channel", 6),
)


@register("synthetic")
def synthetic(
    rows: int = 200_000,
    vocab_sizes: tuple[int, ...] | None = None,
    num_pairs: int = 12,
    num_triples: int = 4,
    first_order: float = 0.2,
    pair_strength: float = 0.25,
    triple_strength: float = 0.35,
    positive_rate: float = 0.5,
    skew: float = 1.0,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Dataset:
    """Draw ``rows`` rows from the planted click model; same options -> identical data."""
    if vocab_sizes is None:
        fields = [Field(n, v) for n, v in DEFAULT_FIELDS]
    else:
        fields = [Field(f"f{i}", int(v)) for i, v in enumerate(vocab_sizes)]
    schema = Schema(fields)
    _check_options(rows, schema, num_pairs, num_triples, positive_rate, split)
    g = torch.Generator().manual_seed(seed)

    local = torch.stack([_skewed_draw(f.vocab_size, rows, skew, g) for f in fields], dim=1)
    logit = torch.zeros(rows, dtype=torch.float64)
    for f, field in enumerate(fields):
        logit += _effects((field.vocab_size,), first_order, g)[local[:, f]]
    pairs = _pick(itertools.combinations(range(len(fields)), 2), num_pairs, g)
    triples = _pick(itertools.combinations(range(len(fields)), 3), num_triples, g)
    for combo, strength in [(c, pair_strength) for c in pairs] + [(c, triple_strength) for c in triples]:
        table = _effects(tuple(fields[f].vocab_size for f in combo), strength, g)
        logit += table[tuple(local[:, f] for f in combo)]
    logit += bias_for_rate(logit, positive_rate)
    prob = torch.sigmoid(logit)
    y = torch.bernoulli(prob, generator=g)

    x = local + torch.tensor(schema.offsets)
    order = torch.randperm(rows, generator=g)
    n_train = int(round(split[0] * rows))
    n_val = int(round(split[1] * rows))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, rows)}
    parts = {
        name: Split(x[order[a:b]], y[order[a:b]].float(), prob[order[a:b]].float())
        for name, (a, b) in bounds.items()
    }
    info = {
        "source": "planted click model (embedded, no download)",
        "split_rule": f"random {split[0]:g}/{split[1]:g}/{split[2]:g} permutation, seed {seed}",
        "options": {
            "rows": rows, "vocab_sizes": [f.vocab_size for f in fields], "num_pairs": num_pairs,
            "num_triples": num_triples, "first_order": first_order, "pair_strength": pair_strength,
            "triple_strength": triple_strength, "positive_rate": positive_rate, "skew": skew,
            "split": list(split), "seed": seed,
        },
        "planted_pairs": [[fields[f].name for f in c] for c in pairs],
        "planted_triples": [[fields[f].name for f in c] for c in triples],
        "rows": {k: len(v) for k, v in parts.items()},
        "positive_rate": {k: round(v.positive_rate, 4) for k, v in parts.items()},
    }
    return Dataset("synthetic", schema, parts["train"], parts["val"], parts["test"], info)


def _check_options(rows, schema, num_pairs, num_triples, positive_rate, split):
    f = schema.num_fields
    max_pairs, max_triples = f * (f - 1) // 2, f * (f - 1) * (f - 2) // 6
    if rows < 30:
        raise ValueError(f"synthetic: rows must be >= 30 so that every split has rows, got {rows}")
    if not 0 <= num_pairs <= max_pairs:
        raise ValueError(f"synthetic: num_pairs must be in 0..{max_pairs} for {f} fields, got {num_pairs}")
    if not 0 <= num_triples <= max_triples:
        raise ValueError(f"synthetic: num_triples must be in 0..{max_triples} for {f} fields, got {num_triples}")
    if not 0 < positive_rate < 1:
        raise ValueError(f"synthetic: positive_rate must be in (0, 1), got {positive_rate}")
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-9:
        raise ValueError(f"synthetic: split must be three positive fractions summing to 1, got {split}")


def _skewed_draw(size: int, rows: int, skew: float, g: torch.Generator) -> torch.Tensor:
    weights = 1.0 / torch.arange(1, size + 1, dtype=torch.float64) ** skew
    weights = weights[torch.randperm(size, generator=g)]
    return torch.multinomial(weights, rows, replacement=True, generator=g)


def _effects(shape: tuple[int, ...], std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64) * std


def _pick(candidates, k: int, g: torch.Generator) -> list[tuple[int, ...]]:
    candidates = list(candidates)
    return [candidates[i] for i in torch.randperm(len(candidates), generator=g)[:k].tolist()]


def bias_for_rate(logit: torch.Tensor, rate: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if torch.sigmoid(logit + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
