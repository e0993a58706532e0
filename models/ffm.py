"""Field-aware factorization machine (Juan et al., 2016)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FieldAwareInteraction, FirstOrder, Input


class FieldAwareFactorizationMachine(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + sum_{i<j} <v[x_i, j], v[x_j, i]> value_i value_j``.

    One d-vector per (feature, field).
    """

    def __init__(self, schema, embed_dim: int = 4):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.first_order = FirstOrder(schema.num_features)
        self.interaction = FieldAwareInteraction(schema.num_features, schema.num_fields, embed_dim)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.first_order(x) + self.interaction(x)
