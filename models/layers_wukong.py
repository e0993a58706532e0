"""Wukong's interaction layer (Zhang et al., 2024): a factorization machine block and a linear compression block
side by side on a set of embeddings, with a residual and a LayerNorm.

Shapes: B rows, n embeddings of size d in a layer's input, n_F and n_L embeddings out of the FMB and LCB,
k the FMB's compressed rank.
"""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import MLP, stacked_xavier, xavier_linear


class FactorizationMachineBlock(nn.Module):
    """FMB: ``MLP(LN(flatten(X X^T Y)))`` reshaped to [n_F, d]; X [n, d] the embeddings, Y [n, k] learned.

    ``X X^T Y`` (all pairwise dot products, compressed to k columns) is computed as ``X (X^T Y)`` in
    O(n d k). MLP: ReLU layers of ``hidden_units`` (no BatchNorm), then a linear layer to n_F d.
    """

    def __init__(self, num_inputs: int, dim: int, num_outputs: int, rank: int = 8, hidden_units=(64,)):
        super().__init__()
        num_inputs, self.dim = checks.positive_int("num_inputs", num_inputs), checks.positive_int("dim", dim)
        self.num_outputs = checks.positive_int("num_outputs", num_outputs)
        self.compress = nn.Parameter(stacked_xavier(1, num_inputs, checks.positive_int("rank", rank))[0])  # Y
        self.norm = nn.LayerNorm(num_inputs * rank)
        self.mlp = MLP(num_inputs * rank, hidden_units, batch_norm=False)
        self.output = xavier_linear(self.mlp.out_dim, num_outputs * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, n_F, d]
        compressed = torch.matmul(x.transpose(1, 2), self.compress)  # X^T Y: [B, d, k]
        interactions = torch.bmm(x, compressed).flatten(1)  # X X^T Y: [B, n k]
        out = self.output(self.mlp(self.norm(interactions)))  # [B, n_F d]
        return out.view(-1, self.num_outputs, self.dim)


class LinearCompressionBlock(nn.Module):
    """LCB: ``L X``, n_L linear recombinations of the n input embeddings; L [n_L, n] is ``.weight``, no bias."""

    def __init__(self, num_inputs: int, num_outputs: int):
        super().__init__()
        num_inputs = checks.positive_int("num_inputs", num_inputs)
        self.weight = nn.Parameter(stacked_xavier(1, checks.positive_int("num_outputs", num_outputs), num_inputs)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, n_L, d]
        return torch.matmul(self.weight, x)


class WukongLayer(nn.Module):
    """``X_{i+1} = LN(flatten([FMB(X_i); LCB(X_i)] + R X_i))`` viewed as [n_F + n_L, d].

    R is the identity when n = n_F + n_L, else a learned [n_F + n_L, n] matrix (no bias). The
    LayerNorm runs over all (n_F + n_L) d entries of a row.
    """

    def __init__(
        self, num_inputs: int, dim: int, num_fm: int = 8, num_lc: int = 8, rank: int = 8, hidden_units=(64,)
    ):
        super().__init__()
        self.fmb = FactorizationMachineBlock(num_inputs, dim, num_fm, rank, hidden_units)
        self.lcb = LinearCompressionBlock(num_inputs, num_lc)
        self.num_outputs = num_fm + num_lc
        self.residual = None if num_inputs == self.num_outputs else LinearCompressionBlock(num_inputs, self.num_outputs)
        self.norm = nn.LayerNorm(self.num_outputs * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, n_F + n_L, d]
        skip = x if self.residual is None else self.residual(x)  # R X: [B, n_F + n_L, d]
        out = (torch.cat([self.fmb(x), self.lcb(x)], dim=1) + skip).flatten(1)  # [B, (n_F + n_L) d]
        return self.norm(out).view_as(skip)
