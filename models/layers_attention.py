"""Field-wise attention and reweighting blocks: AutoInt's self-attention over fields, FiBiNET's squeeze-excitation
and bilinear interaction.

Shapes as in :mod:`models.layers`: B rows, F fields, d embedding size, P = F (F - 1) / 2 field pairs i < j,
H heads of width d'.
"""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import field_pairs, stacked_xavier

BILINEAR_TYPES = ("field_all", "field_each", "field_interaction")


class FieldSelfAttention(nn.Module):
    """AutoInt's interacting layer: multi-head self-attention over the F fields with a residual.

    For head h: ``a^h_{mk} = softmax_k(<W_Q^h e_m, W_K^h e_k>)`` (unscaled, as in the paper),
    ``u^h_m = sum_k a^h_{mk} W_V^h e_k``; output ``ReLU([u^1_m; ...; u^H_m] + W_R e_m)`` of width H d'.
    W_Q, W_K, W_V, W_R: [in_dim, H d'] each, no bias (4 in_dim H d' parameters), side by side in
    ``.weight`` [in_dim, 4 H d']. Each is its own product (one product of all four, then split into
    heads, made backward stack the four gradients and permute them back: 13% slower at batch 2048);
    the heads run as one batched attention. The softmax over the F keys is written out (exp, sum,
    divide): on CPU, ``torch.softmax`` over such short rows was several times slower, forward and backward.
    """

    def __init__(self, in_dim: int, head_dim: int = 32, num_heads: int = 2):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        self.head_dim = checks.positive_int("head_dim", head_dim)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.out_dim = self.head_dim * self.num_heads
        self.weight = nn.Parameter(stacked_xavier(4, in_dim, self.out_dim).permute(1, 0, 2).reshape(in_dim, -1))

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, in_dim] -> [B, F, H d']
        batch, fields, in_dim = e.shape
        rows = e.reshape(batch * fields, in_dim)
        w_q, w_k, w_v, w_r = self.weight.split(self.out_dim, dim=1)
        q, k, v = ((rows @ w).view(batch, fields, self.num_heads, self.head_dim).transpose(1, 2).contiguous()
                   for w in (w_q, w_k, w_v))  # W e_m per head: [B, H, F, d']
        scores = q @ k.transpose(2, 3)  # <W_Q e_m, W_K e_k>: [B, H, F, F]
        weights = torch.exp(scores - scores.detach().amax(3, keepdim=True))  # softmax is shift-invariant
        u = (weights / weights.sum(3, keepdim=True)) @ v  # sum_k a_mk W_V e_k: [B, H, F, d']
        residual = (rows @ w_r).view(batch, fields, self.out_dim)  # W_R e_m: [B, F, H d']
        return torch.relu(u.transpose(1, 2).reshape(batch, fields, self.out_dim) + residual)


class SqueezeExcitation(nn.Module):
    """FiBiNET's SENET: ``z_f = mean_d e_f``, ``a = ReLU(W_2 ReLU(W_1 z))``, ``v_f = a_f e_f``.

    W_1 [F', F] and W_2 [F, F'] with F' = max(1, F // reduction_ratio), no bias (2 F F' parameters), Xavier-normal.
    """

    def __init__(self, num_fields: int, reduction_ratio: int = 3):
        super().__init__()
        num_fields = checks.positive_int("num_fields", num_fields)
        reduced = max(1, num_fields // checks.positive_int("reduction_ratio", reduction_ratio))
        self.squeeze = nn.Parameter(stacked_xavier(1, reduced, num_fields)[0])  # W_1: [F', F]
        self.excite = nn.Parameter(stacked_xavier(1, num_fields, reduced)[0])  # W_2: [F, F']

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, F, d]
        z = e.mean(2)  # [B, F]
        a = torch.relu(torch.relu(z @ self.squeeze.t()) @ self.excite.t())  # [B, F]
        return e * a.unsqueeze(2)


class BilinearInteraction(nn.Module):
    """FiBiNET's bilinear interaction ``p_ij = (v_i W) * v_j`` for the P pairs i < j (``*`` elementwise).

    ``bilinear_type``: ``"field_all"``: one W [d, d]; ``"field_each"``: W_i for the left field i,
    F - 1 matrices (the last field is never a left one); ``"field_interaction"``: W_ij per pair,
    P matrices. All Xavier-normal, in ``.weight`` [n, d, d].
    """

    def __init__(self, num_fields: int, dim: int, bilinear_type: str = "field_interaction"):
        super().__init__()
        num_fields = checks.positive_int("num_fields", num_fields)
        dim = checks.positive_int("dim", dim)
        self.bilinear_type = checks.one_of("bilinear_type", bilinear_type, BILINEAR_TYPES)
        rows, cols = field_pairs(num_fields)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        count = {"field_all": 1, "field_each": num_fields - 1, "field_interaction": len(rows)}[bilinear_type]
        self.weight = nn.Parameter(stacked_xavier(count, dim, dim))

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, P, d]
        right = v.index_select(1, self.cols)  # v_j: [B, P, d]
        if self.bilinear_type == "field_all":
            left = (v @ self.weight[0]).index_select(1, self.rows)  # v_i W: [B, P, d]
        elif self.bilinear_type == "field_each":
            transformed = torch.matmul(v[:, :-1].transpose(0, 1), self.weight)  # v_i W_i: [F-1, B, d]
            left = transformed.transpose(0, 1).index_select(1, self.rows)  # [B, P, d]
        else:
            pairs = v.index_select(1, self.rows).transpose(0, 1)  # v_i per pair: [P, B, d]
            left = torch.matmul(pairs, self.weight).transpose(0, 1)  # v_i W_ij: [B, P, d]
        return left * right
