"""Explicit cross layers past DCN-V2: DCN's rank-1 cross, GDCN's gated cross and xDeepFM's compressed interaction.

Shapes as in :mod:`models.layers`: B rows, F fields, d embedding size, M = F d, H_k feature maps of CIN layer k.
The cross layers take ``(x_0, x_l)`` like :class:`models.layers.CrossLayer`, so
:class:`models.layers.CrossStack` chains them.
"""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import stacked_xavier


class RankOneCrossLayer(nn.Module):
    """DCN (v1) cross ``x_{l+1} = x_0 (x_l^T w) + b + x_l``: w [M] is ``.weight``, b [M] is ``.bias`` (2 M parameters).

    ``x_l^T w`` is one scalar per row, so the layer is DCN-V2's ``x_0 * (W x_l + b) + x_l`` with the
    rank-1 ``W = 1 w^T``. w is Xavier-normal as an [M, 1] matrix, b starts at zero.
    """

    def __init__(self, in_dim: int):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        self.weight = nn.Parameter(stacked_xavier(1, in_dim, 1).view(in_dim))
        self.bias = nn.Parameter(torch.zeros(in_dim))

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # [B, M], [B, M] -> [B, M]
        return x0 * (x @ self.weight).unsqueeze(1) + self.bias + x  # x_0 [B, M] times x_l^T w [B, 1]


class GatedCrossLayer(nn.Module):
    """GDCN gated cross ``c_{l+1} = c_0 * (W_c c_l + b) * sigmoid(W_g c_l) + c_l`` (2 M^2 + M parameters).

    W_c and W_g (both [M, M], Xavier-normal, W_g without bias) are stacked in ``.weight`` [2 M, M]:
    rows 0..M-1 are W_c, rows M..2M-1 are W_g, so one [B, M] x [M, 2 M] product computes both.
    """

    def __init__(self, in_dim: int):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        self.weight = nn.Parameter(stacked_xavier(2, in_dim, in_dim).view(2 * in_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(in_dim))

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # [B, M], [B, M] -> [B, M]
        cross, gate = (x @ self.weight.t()).chunk(2, dim=1)  # W_c c_l, W_g c_l: [B, M] each
        return x0 * (cross + self.bias) * torch.sigmoid(gate) + x


class _Outer(torch.autograd.Function):
    """``z[n, i, j] = x[n, i] y[n, j]`` with the gradients as batched matrix-vector products
    (``dx = dz y``, ``dy = x^T dz``); autograd's backward of the broadcast product multiplies dz out
    to [n, i, j] twice and sums it, which made xDeepFM's training step 14% slower at batch 2048."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [N, I], [N, J] -> [N, I, J]
        ctx.save_for_backward(x, y)
        return x.unsqueeze(2) * y.unsqueeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, y = ctx.saved_tensors  # under bf16 autocast x may be bf16 and y fp32: multiply in the gradient's type
        grad_x = torch.bmm(grad, y.to(grad.dtype).unsqueeze(2)).squeeze(2).to(x.dtype) if ctx.needs_input_grad[0] \
            else None
        grad_y = torch.bmm(x.to(grad.dtype).unsqueeze(1), grad).squeeze(1).to(y.dtype) if ctx.needs_input_grad[1] \
            else None
        return grad_x, grad_y


class CompressedInteraction(nn.Module):
    """xDeepFM's CIN: ``X^k_h = sum_{i < H_{k-1}} sum_{j < F} W^k_{h,i,j} (X^{k-1}_i * X^0_j)``, X^0 = E [F, d].

    ``*`` is elementwise over the d coordinates; layer k has H_k maps and ``W^k`` [H_k, H_{k-1} F]
    (H_0 = F; no bias and identity activation, as in the paper's equation): sum_k H_k H_{k-1} F
    parameters. The output is every map sum-pooled over d, layers side by side:
    ``p = [sum_d X^1; ...; sum_d X^K]`` of width sum_k H_k. The maps are kept coordinate-major,
    [B, d, H]: per layer the H_{k-1} F products of a coordinate are one contiguous row of a
    [B d, H_{k-1} F] matrix that ``W^k`` compresses in one plain 2-D product.
    """

    def __init__(self, num_fields: int, layer_sizes=(100, 100, 100)):
        super().__init__()
        num_fields = checks.positive_int("num_fields", num_fields)
        layer_sizes = checks.widths("layer_sizes", layer_sizes)
        if not layer_sizes:
            raise ValueError(f"layer_sizes must name at least one CIN layer such as (100, 100), got {layer_sizes!r}")
        previous = [num_fields, *layer_sizes[:-1]]
        self.weights = nn.ParameterList(
            nn.Parameter(stacked_xavier(1, h, h_prev * num_fields)[0])
            for h, h_prev in zip(layer_sizes, previous, strict=True)
        )
        self.out_dim = sum(layer_sizes)

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, sum H_k]
        batch, fields, dim = e.shape
        x0 = e.transpose(1, 2).reshape(batch * dim, fields)  # [B d, F]
        x, pooled = x0, []
        for weight in self.weights:
            z = _Outer.apply(x, x0).view(batch * dim, -1)  # X^{k-1}_i * X^0_j: [B d, H_{k-1} F]
            x = z @ weight.t()  # [B d, H_k]
            pooled.append(x.view(batch, dim, -1).sum(1))  # [B, H_k]
        return torch.cat(pooled, dim=1)
