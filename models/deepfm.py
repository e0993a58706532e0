"""DeepFM (Guo et al., 2017): an FM and a DNN sharing one embedding."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import MLP, FeatureEmbedding, FirstOrder, FMInteraction, Input, xavier_linear


class DeepFM(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + sum_{i<j} <e_i, e_j> + w^T DNN(e) + b``, e shared by FM and DNN."""

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        hidden_units=(64, 16),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.first_order = FirstOrder(schema.num_features)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.fm = FMInteraction()
        self.dnn = MLP(schema.num_fields * embed_dim, hidden_units, dropout, batch_norm)
        self.output = xavier_linear(self.dnn.out_dim, 1)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        return self.first_order(x) + self.fm(e) + self.output(self.dnn(e.flatten(1))).squeeze(-1)
