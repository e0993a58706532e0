"""FinalMLP (Mao et al., AAAI 2023): two MLP streams on gated embeddings, fused by a multi-head bilinear layer."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import MLP, FeatureEmbedding, Input
from .layers_gating import FeatureSelectionGate, MultiHeadBilinearFusion


class FinalMLP(nn.Module):
    """``logit = BF(MLP_1(g_1 * e), MLP_2(g_2 * e))``: each stream has its own feature-selection gate g
    (``use_gates``), BF is the multi-head bilinear fusion.

    As in the paper, stream 1 is deep and narrow, stream 2 wide and shallow; their widths here are a
    third of the paper's Criteo set-up (three layers of 400 and one of 800), with 8 fusion heads.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        hidden_units_1=(128, 128, 128),
        hidden_units_2=(256,),
        num_heads: int = 8,
        use_gates: bool = True,
        gate_hidden_units=(64,),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        width = schema.num_fields * embed_dim
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        use_gates = checks.boolean("use_gates", use_gates)
        self.gates = nn.ModuleList(
            FeatureSelectionGate(width, embed_dim, gate_hidden_units) for _ in range(2 if use_gates else 0)
        )
        units = (hidden_units_1, hidden_units_2)
        self.streams = nn.ModuleList(MLP(width, widths, dropout, batch_norm) for widths in units)
        self.fusion = MultiHeadBilinearFusion(self.streams[0].out_dim, self.streams[1].out_dim, num_heads)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x).flatten(1)  # [B, M]
        inputs = [gate(e) for gate in self.gates] or [e, e]  # g_s * e: [B, M] per stream
        o1, o2 = (stream(h) for stream, h in zip(self.streams, inputs, strict=True))  # [B, D1], [B, D2]
        return self.fusion(o1, o2)
