"""xDeepFM (Lian et al., KDD 2018): a linear part, the compressed interaction network and a DNN, logits summed."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, FirstOrder, Input, MLPLogit, xavier_linear
from .layers_cross import CompressedInteraction


class XDeepFM(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + w_c^T CIN(E) + w^T MLP(e) + b``, E [F, d] shared by CIN and DNN.

    The paper's Criteo set-up has three CIN layers of 200 maps and a DNN of two 400 layers; a CIN
    layer costs H_k H_{k-1} F d multiply-adds per row, so here two layers of 16 maps
    and the DNN is the study's tower, to keep a training step near DCN-V2's.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        cin_layer_sizes=(16, 16),
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.first_order = FirstOrder(schema.num_features)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.cin = CompressedInteraction(schema.num_fields, cin_layer_sizes)
        self.cin_output = xavier_linear(self.cin.out_dim, 1)
        self.deep = MLPLogit(schema.num_fields * embed_dim, hidden_units, dropout, batch_norm)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        cin = self.cin_output(self.cin(e)).squeeze(-1)  # [B]
        return self.first_order(x) + cin + self.deep(e.flatten(1))
