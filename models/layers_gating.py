"""Multiplicative gates on the embeddings and hidden layers: FinalMLP's feature selection and multi-head bilinear
fusion, MaskNet's instance-guided mask blocks.

Shapes: B rows, M = F d the flattened embedding width, N the width a gate or mask acts on, K blocks, k heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .layers import MLP, stacked_xavier, xavier_linear


class FeatureSelectionGate(nn.Module):
    """FinalMLP's feature selection ``x = 2 sigmoid(MLP(c)) * e`` on the flattened embeddings e [B, M].

    The context c is a learned vector of ``context_dim`` entries (FuxiCTR's choice when no context
    fields are named; Xavier-normal rather than FuxiCTR's zeros, so the gate MLP's first layer gets a
    gradient from the first step), and the gate weighs each of the M inputs of one stream the same
    way for every row. MLP: ReLU layers of ``hidden_units`` (no BatchNorm: one context row per batch),
    then a linear layer to M.
    """

    def __init__(self, in_dim: int, context_dim: int, hidden_units=(64,)):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        self.context = nn.Parameter(stacked_xavier(1, 1, checks.positive_int("context_dim", context_dim))[0])
        self.mlp = MLP(context_dim, hidden_units, batch_norm=False)
        self.output = xavier_linear(self.mlp.out_dim, in_dim)

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, M] -> [B, M]
        return e * (2 * torch.sigmoid(self.output(self.mlp(self.context))))  # gate [1, M]


class MultiHeadBilinearFusion(nn.Module):
    """FinalMLP's fusion ``logit = b + w_1^T o_1 + w_2^T o_2 + sum_h o_{1,h}^T W_h o_{2,h}``.

    o_1 [B, D_1] and o_2 [B, D_2] are cut into k heads of D_1 / k and D_2 / k entries; W_h
    [D_1/k, D_2/k]: D_1 + D_2 + D_1 D_2 / k + 1 parameters, Xavier-normal, b zero. All heads
    in one batched product.
    """

    def __init__(self, dim1: int, dim2: int, num_heads: int = 8):
        super().__init__()
        dim1, dim2 = checks.positive_int("dim1", dim1), checks.positive_int("dim2", dim2)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        if dim1 % num_heads or dim2 % num_heads:
            raise ValueError(f"num_heads must divide both stream widths {dim1} and {dim2}, got {num_heads}")
        self.w1 = nn.Parameter(stacked_xavier(1, dim1, 1).view(dim1))
        self.w2 = nn.Parameter(stacked_xavier(1, dim2, 1).view(dim2))
        self.weight = nn.Parameter(stacked_xavier(num_heads, dim1 // num_heads, dim2 // num_heads))  # [k, D1/k, D2/k]
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, o1: torch.Tensor, o2: torch.Tensor) -> torch.Tensor:  # [B, D1], [B, D2] -> [B]
        batch, k = o1.shape[0], self.num_heads
        left = torch.matmul(o1.view(batch, k, -1).transpose(0, 1), self.weight)  # o_{1,h}^T W_h: [k, B, D2/k]
        bilinear = (left.transpose(0, 1).reshape(batch, -1) * o2).sum(1)  # [B]
        return bilinear + o1 @ self.w1 + o2 @ self.w2 + self.bias


class MaskBlocks(nn.Module):
    """K MaskNet blocks side by side, each ``ReLU(LN_k(U_k (m_k * h)))`` with the instance-guided mask
    ``m_k = W_{2,k} ReLU(W_{1,k} e + b_{1,k}) + b_{2,k}``.

    e [B, M] is the flattened (raw) embedding that guides the masks, h [B, N] the input masked
    (the layer-normalised embedding, or the previous block's output). W_1 [r N, M] is the wide
    aggregation layer (r = ``reduction_ratio``), W_2 [N, r N] the projection, U_k [out_dim, N]
    the block's hidden layer (no bias: the LayerNorm's own follows). Parameters per block:
    r N M + r N + r N N + N + N out_dim + 2 out_dim. The K aggregations are one product, the
    projections and hidden layers one batched product each; the output is [B, K out_dim].
    """

    def __init__(self, mask_dim: int, in_dim: int, out_dim: int, num_blocks: int = 1, reduction_ratio: int = 1):
        super().__init__()
        mask_dim, in_dim = checks.positive_int("mask_dim", mask_dim), checks.positive_int("in_dim", in_dim)
        out_dim, k = checks.positive_int("out_dim", out_dim), checks.positive_int("num_blocks", num_blocks)
        wide = checks.positive_int("reduction_ratio", reduction_ratio) * in_dim
        self.aggregate = xavier_linear(mask_dim, k * wide)  # W_1 of all blocks: [K r N, M]
        self.project = nn.Parameter(stacked_xavier(k, wide, in_dim))  # W_2^T: [K, r N, N]
        self.project_bias = nn.Parameter(torch.zeros(k, 1, in_dim))
        self.hidden = nn.Parameter(stacked_xavier(k, in_dim, out_dim))  # U^T: [K, N, out]
        self.norm_weight = nn.Parameter(torch.ones(k, 1, out_dim))
        self.norm_bias = nn.Parameter(torch.zeros(k, 1, out_dim))
        self.out_dim = out_dim  # a plain int, so exporters see a constant normalised shape

    def forward(self, e: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # [B, M], [B, N] -> [B, K out]
        k, wide, _ = self.project.shape
        aggregated = torch.relu(self.aggregate(e)).view(-1, k, wide).transpose(0, 1)  # [K, B, r N]
        mask = torch.baddbmm(self.project_bias, aggregated, self.project)  # m_k: [K, B, N]
        hidden = torch.bmm(mask * h, self.hidden)  # U_k (m_k * h): [K, B, out]
        normed = F.layer_norm(hidden, (self.out_dim,)) * self.norm_weight + self.norm_bias  # [K, B, out]
        return torch.relu(normed).transpose(0, 1).flatten(1)  # [B, K out]
