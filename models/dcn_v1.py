"""Deep & Cross Network (Wang et al., ADKDD 2017), the first DCN: rank-1 cross layers beside a DNN."""

from __future__ import annotations

from .dcn import DeepCrossNetwork, cross_stack_of
from .layers_cross import RankOneCrossLayer


class DCNV1(DeepCrossNetwork):
    """``logit = w^T [cross(e); DNN(e)] + b`` with cross layers ``x_{l+1} = x_0 (x_l^T w_l) + b_l + x_l``.

    Six cross layers as in the paper's Criteo set-up; the paper's DNN (two layers of 1024) is replaced
    by the study's tower. The paper combines the two parts in parallel only.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 6,
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        cross_net = cross_stack_of(RankOneCrossLayer, num_layers)
        super().__init__(schema, cross_net, embed_dim, "parallel", hidden_units, dropout, batch_norm)
