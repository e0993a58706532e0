"""Deep & Cross Network V2 (Wang et al., WWW 2021): full-rank (DCN-V2) and mixture of low-rank (DCN-Mix)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from . import checks
from .layers import MLP, CrossNet, CrossStack, FeatureEmbedding, Input, MixtureCrossNet, xavier_linear

COMBINES = ("parallel", "stacked")


def cross_stack_of(layer: Callable[[int], nn.Module], num_layers: int) -> Callable[[int], nn.Module]:
    """A ``make_cross_net`` for :class:`DeepCrossNetwork`: ``num_layers`` of ``layer(M)`` in a :class:`CrossStack`."""
    num_layers = checks.positive_int("num_layers", num_layers)
    return lambda width: CrossStack([layer(width) for _ in range(num_layers)])


class DeepCrossNetwork(nn.Module):
    """A cross net and a DNN on the flattened embeddings e (width M = F d), no first-order term.

    ``combine="parallel"``: ``logit = w^T [cross(e); DNN(e)] + b``;
    ``combine="stacked"``: ``logit = w^T DNN(cross(e)) + b``.
    ``make_cross_net(M)`` builds the cross net, the only difference between DCN-V2 and DCN-Mix.
    """

    def __init__(
        self,
        schema,
        make_cross_net: Callable[[int], nn.Module],
        embed_dim: int,
        combine: str,
        hidden_units,
        dropout: float,
        batch_norm: bool,
    ):
        super().__init__()
        self.combine = checks.one_of("combine", combine, COMBINES)
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        width = schema.num_fields * embed_dim
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.cross_net = make_cross_net(width)
        self.dnn = MLP(width, hidden_units, dropout, batch_norm)
        self.output = xavier_linear(self.dnn.out_dim + (width if combine == "parallel" else 0), 1)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x).flatten(1)  # [B, M]
        if self.combine == "parallel":
            h = torch.cat([self.cross_net(e), self.dnn(e)], dim=1)  # [B, M + last width]
        else:
            h = self.dnn(self.cross_net(e))  # [B, last width]
        return self.output(h).squeeze(-1)


class DCNV2(DeepCrossNetwork):
    """DCN-V2: full-rank cross layers ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    The M x M matrices: ``model.cross_net.cross_weights()`` (= ``model.cross_net.layers[l].weight``).
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 3,
        combine: str = "parallel",
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__(
            schema, lambda width: CrossNet(width, num_layers), embed_dim, combine, hidden_units, dropout, batch_norm
        )


class DCNMix(DeepCrossNetwork):
    """DCN-Mix: cross layers mixing ``num_experts`` rank-``rank`` experts through a ``gate``.

    Defaults are the study's best DCN-Mix (parallel, one layer, r = 16, k = 4, softmax gate,
    the study's expert form without the nonlinearity and C).
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 1,
        combine: str = "parallel",
        rank: int = 16,
        num_experts: int = 4,
        gate: str = "softmax",
        expert_form: str = "study",
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__(
            schema,
            lambda width: MixtureCrossNet(width, num_layers, rank, num_experts, gate, expert_form),
            embed_dim,
            combine,
            hidden_units,
            dropout,
            batch_norm,
        )
