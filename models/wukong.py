"""Wukong (Zhang et al., ICML 2024): stacked layers of a factorization machine block and a linear compression
block on the set of embeddings, then an MLP."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, Input, MLPLogit
from .layers_wukong import WukongLayer


class Wukong(nn.Module):
    """``X_0 = E``, ``X_{i+1} = WukongLayer(X_i)`` for ``num_layers`` layers, ``logit = w^T MLP(flatten(X_L)) + b``.

    Each layer emits ``num_fm`` FMB and ``num_lc`` LCB embeddings; the FMB compresses its pairwise
    dot products to ``fm_rank`` columns and has an MLP of ``fm_hidden_units``. The paper's
    public-data set-up is scaled down (fewer embeddings per layer, narrower MLPs) to stay cheap.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 2,
        num_fm: int = 8,
        num_lc: int = 8,
        fm_rank: int = 8,
        fm_hidden_units=(64,),
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        num_layers = checks.positive_int("num_layers", num_layers)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        counts = [schema.num_fields] + [num_fm + num_lc] * num_layers
        self.layers = nn.Sequential(
            *(WukongLayer(n, embed_dim, num_fm, num_lc, fm_rank, fm_hidden_units) for n in counts[:-1])
        )
        self.deep = MLPLogit(counts[-1] * embed_dim, hidden_units, dropout, batch_norm)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.deep(self.layers(self.embedding(x)).flatten(1))  # [B, n d] -> [B]
