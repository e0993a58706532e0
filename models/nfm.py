"""Neural factorization machine (He and Chua, 2017)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import MLP, BiInteraction, FeatureEmbedding, FirstOrder, Input, xavier_linear


class NeuralFactorizationMachine(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + w^T DNN(BN(sum_{i<j} e_i * e_j)) + b``.

    ``batch_norm`` switches both the BatchNorm on the bi-interaction pooling and those of the DNN.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 64,
        hidden_units=(64, 16),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.first_order = FirstOrder(schema.num_features)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.bi_interaction = BiInteraction()
        self.pooling_norm = nn.BatchNorm1d(embed_dim) if checks.boolean("batch_norm", batch_norm) else nn.Identity()
        self.dnn = MLP(embed_dim, hidden_units, dropout, batch_norm)
        self.output = xavier_linear(self.dnn.out_dim, 1)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        pooled = self.pooling_norm(self.bi_interaction(self.embedding(x)))  # [B, d]
        return self.first_order(x) + self.output(self.dnn(pooled)).squeeze(-1)
