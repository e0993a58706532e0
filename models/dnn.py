"""DNN: the plain MLP on the flattened embeddings, the baseline every interaction layer has to beat (BARS)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, Input, MLPLogit


class DNN(nn.Module):
    """``logit = w^T MLP(e) + b`` with e the F d flattened embeddings; the study's tower by default."""

    def __init__(
        self, schema, embed_dim: int = 16, hidden_units=(128, 64, 32), dropout: float = 0.1, batch_norm: bool = True
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.deep = MLPLogit(schema.num_fields * embed_dim, hidden_units, dropout, batch_norm)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.deep(self.embedding(x).flatten(1))
