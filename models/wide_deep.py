"""Wide & Deep (Cheng et al., 2016): a linear model on the features beside a DNN on their embeddings."""

from __future__ import annotations

import torch

from .dnn import DNN
from .layers import FirstOrder, Input


class WideAndDeep(DNN):
    """``logit = w_0 + sum_f w[x_f] value_f + w^T MLP(e) + b``.

    The wide part is the first-order term on the raw features; the paper's hand-picked cross-product
    features have no counterpart in a generic schema (FuxiCTR and DeepCTR-Torch leave them out too).
    """

    def __init__(
        self, schema, embed_dim: int = 16, hidden_units=(128, 64, 32), dropout: float = 0.1, batch_norm: bool = True
    ):
        super().__init__(schema, embed_dim, hidden_units, dropout, batch_norm)
        self.wide = FirstOrder(schema.num_features)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.wide(x) + super().forward(x)
