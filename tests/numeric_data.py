"""A small hand-built data set in field:index:value form with a planted numeric effect, for the tests."""

from __future__ import annotations

import torch

import data
from data.schema import NUMBER, NUMBER_MISSING

SCHEMA = data.Schema([data.Field("c0", 4), data.Field("n0", 2, kind="numeric"), data.Field("c1", 5),
                      data.Field("n1", 2, kind="numeric"), data.Field("c2", 3)])


def planted_numeric(rows: int = 4_000, seed: int = 0, missing: float = 0.1) -> data.Dataset:
    """Rows of :data:`SCHEMA`: uniform categories, standard-normal numbers (a share ``missing`` of them missing:
    index ``NUMBER_MISSING``, value 1), clicks drawn from ``logit = -0.5 + 1.5 n0 - n1 + 0.4 [c0 = 0]`` (a
    missing number counts 0); split 70/15/15, true probabilities kept."""
    g = torch.Generator().manual_seed(seed)
    categories = [torch.randint(0, f.vocab_size, (rows,), generator=g) for f in SCHEMA.fields]
    numbers = torch.randn(rows, 2, generator=g)
    is_missing = torch.rand(rows, 2, generator=g) < missing
    numbers = numbers.masked_fill(is_missing, 0.0)
    local = torch.stack(categories, dim=1)
    values = torch.ones(rows, SCHEMA.num_fields)
    for column, f in enumerate((SCHEMA.index("n0"), SCHEMA.index("n1"))):
        local[:, f] = torch.where(is_missing[:, column], NUMBER_MISSING, NUMBER)
        values[:, f] = torch.where(is_missing[:, column], 1.0, numbers[:, column])
    logit = -0.5 + 1.5 * numbers[:, 0] - numbers[:, 1] + 0.4 * (local[:, 0] == 0)
    prob = torch.sigmoid(logit)
    y = torch.bernoulli(prob, generator=g)
    x = local + torch.tensor(SCHEMA.offsets)
    cut = [0, int(0.7 * rows), int(0.85 * rows), rows]
    splits = [data.Split(x[a:b], y[a:b], prob[a:b], values=values[a:b]) for a, b in zip(cut, cut[1:], strict=False)]
    return data.Dataset("planted-numeric", SCHEMA, *splits)
