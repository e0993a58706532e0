"""Factorization machine (Rendle, 2010)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, FirstOrder, FMInteraction, Input


class FactorizationMachine(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + sum_{i<j} <e_i, e_j>``."""

    def __init__(self, schema, embed_dim: int = 4):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.first_order = FirstOrder(schema.num_features)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.interaction = FMInteraction()

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.first_order(x) + self.interaction(self.embedding(x))
