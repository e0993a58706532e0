"""Gated Deep Cross Network (Wang et al., CIKM 2023): DCN-V2 with an information gate on every cross layer."""

from __future__ import annotations

from .dcn import DeepCrossNetwork, cross_stack_of
from .layers_cross import GatedCrossLayer


class GDCN(DeepCrossNetwork):
    """Gated cross layers ``c_{l+1} = c_0 * (W_c c_l + b) * sigmoid(W_g c_l) + c_l`` and a DNN.

    ``combine="parallel"`` (GDCN-P, default): ``logit = w^T [cross(e); DNN(e)] + b``;
    ``"stacked"`` (GDCN-S): ``logit = w^T DNN(cross(e)) + b``. Two gated layers (the paper uses three
    or more; each costs two M x M products) and the study's tower instead of the paper's DNN of
    three 400 layers; every field keeps d = 16 (no field-level dimension optimisation).
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 2,
        combine: str = "parallel",
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        cross_net = cross_stack_of(GatedCrossLayer, num_layers)
        super().__init__(schema, cross_net, embed_dim, combine, hidden_units, dropout, batch_norm)
