"""Product-based neural network (Qu et al., 2016): IPNN, OPNN and PNN* (both products)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import MLP, FeatureEmbedding, InnerProduct, Input, OuterProduct, xavier_linear

PRODUCTS = ("inner", "outer", "both")


class ProductNeuralNetwork(nn.Module):
    """``logit = w^T DNN([z; p]) + b`` with z the F d flattened embeddings and p the P pair products.

    ``product``: ``"inner"`` (p_ij = <e_i, e_j>), ``"outer"`` (p_ij = e_i^T K_ij e_j) or ``"both"``
    (2 P products, the study's PNN). No first-order term.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        product: str = "both",
        hidden_units=(64, 16),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        product = checks.one_of("product", product, PRODUCTS)
        num_fields = schema.num_fields
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        products: list[nn.Module] = []
        if product in ("inner", "both"):
            products.append(InnerProduct(num_fields))
        if product in ("outer", "both"):
            products.append(OuterProduct(num_fields, embed_dim))
        self.products = nn.ModuleList(products)
        num_pairs = num_fields * (num_fields - 1) // 2
        self.dnn = MLP(num_fields * embed_dim + len(products) * num_pairs, hidden_units, dropout, batch_norm)
        self.output = xavier_linear(self.dnn.out_dim, 1)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        z_and_p = torch.cat([e.flatten(1), *(product(e) for product in self.products)], dim=1)  # [B, F d + n P]
        return self.output(self.dnn(z_and_p)).squeeze(-1)
