"""Logistic regression: the first-order baseline."""

from __future__ import annotations

import torch
from torch import nn

from .layers import FirstOrder, Input


class LogisticRegression(nn.Module):
    """``logit = w_0 + sum_f w[x_f] value_f``."""

    def __init__(self, schema):
        super().__init__()
        self.first_order = FirstOrder(schema.num_features)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        return self.first_order(x)
