"""MaskNet (Wang et al., DLP-KDD 2021): MLP blocks whose inputs are multiplied by instance-guided masks."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, Input, MLPLogit
from .layers_gating import MaskBlocks

MODES = ("serial", "parallel")


class MaskNet(nn.Module):
    """MaskBlocks ``ReLU(LN(U (mask(e) * h)))`` on the embeddings, then ``w^T MLP(.) + b``.

    ``mode="parallel"`` (ParaMaskNet): ``num_blocks`` blocks all on LN(E) (field-wise LayerNorm),
    their outputs side by side into the MLP; ``"serial"`` (SerMaskNet): block 1 on LN(E), block l
    on block l-1's output, the last into the MLP (``hidden_units=()`` gives the paper's single
    output layer). Every mask is computed from the raw flattened embedding e. Defaults: serial,
    three blocks of 64 and an aggregation layer as wide as the masked input (reduction ratio 1,
    FuxiCTR's default; the paper's larger ratios multiply the cost of the masks).
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        mode: str = "serial",
        num_blocks: int = 3,
        block_dim: int = 64,
        reduction_ratio: int = 1,
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        self.mode = checks.one_of("mode", mode, MODES)
        num_blocks = checks.positive_int("num_blocks", num_blocks)
        width = schema.num_fields * embed_dim
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        self.embedding_norm = nn.LayerNorm(embed_dim)
        if mode == "parallel":
            self.blocks = nn.ModuleList([MaskBlocks(width, width, block_dim, num_blocks, reduction_ratio)])
        else:
            inputs = [width] + [block_dim] * (num_blocks - 1)
            self.blocks = nn.ModuleList(MaskBlocks(width, n, block_dim, 1, reduction_ratio) for n in inputs)
        top_width = block_dim * (num_blocks if mode == "parallel" else 1)
        self.deep = MLPLogit(top_width, hidden_units, dropout, batch_norm)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        guide = e.flatten(1)  # [B, M]
        h = self.embedding_norm(e).flatten(1)  # LN(e_f) per field: [B, M]
        for block in self.blocks:
            h = block(guide, h)  # [B, K block_dim]
        return self.deep(h)
