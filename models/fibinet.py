"""FiBiNET (Huang et al., RecSys 2019): squeeze-excitation reweighting and bilinear feature interactions."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, FirstOrder, Input, MLPLogit
from .layers_attention import BilinearInteraction, SqueezeExcitation


class FiBiNET(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f + w^T MLP([p; q]) + b``: p = Bilinear(E), q = Bilinear(SENET(E)).

    One bilinear block serves both inputs, as in the paper's equations; p and q are [P, d] each, so
    the DNN reads 2 P d inputs. Defaults: reduction ratio 3 and the field-interaction type (the
    paper's choices); the study's tower instead of the paper's three layers of 400.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        bilinear_type: str = "field_interaction",
        reduction_ratio: int = 3,
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        num_fields = schema.num_fields
        self.first_order = FirstOrder(schema.num_features)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.senet = SqueezeExcitation(num_fields, reduction_ratio)
        self.bilinear = BilinearInteraction(num_fields, embed_dim, bilinear_type)
        num_pairs = num_fields * (num_fields - 1) // 2
        self.deep = MLPLogit(2 * num_pairs * embed_dim, hidden_units, dropout, batch_norm)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        p, q = self.bilinear(e), self.bilinear(self.senet(e))  # [B, P, d] each
        return self.first_order(x) + self.deep(torch.cat([p, q], dim=1).flatten(1))
