"""Shared blocks of the CTR families: each forward is its paper's formula in a few tensor lines.

Shapes: B rows, F fields, d embedding size, P = F (F - 1) / 2 field pairs i < j,
M = F d the flattened embedding width, k experts, r rank.
Dense layers use Xavier-normal weights and zero biases, as the reference study does.

A model's input ``x`` is either an int64 index tensor ``[B, F]`` (every value 1) or ``data.Features``
(indices ``x_f`` and values ``value_f``, the field:index:value form of FM and libFFM). The blocks that
read indices (:class:`FeatureEmbedding`, :class:`FirstOrder`, :class:`FieldAwareInteraction`) apply the
values; an index tensor takes the plain path, with no multiply by ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import torch
import torch.nn.functional as F
from torch import nn

from . import checks

if TYPE_CHECKING:
    from data import Features

Input: TypeAlias = "torch.Tensor | Features"  # a model's input: indices [B, F], or indices and values


def indices_and_values(x: Input) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(index [B, F], value [B, F])`` of a model input; value is None for an index tensor (every value 1)."""
    return (x, None) if isinstance(x, torch.Tensor) else (x.index, x.value)


def xavier_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """``nn.Linear(in_dim, out_dim)`` with a Xavier-normal weight and a zero bias."""
    linear = nn.Linear(in_dim, out_dim)
    nn.init.xavier_normal_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def field_pairs(num_fields: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Field indices ``(i, j)`` of the P pairs i < j, ordered (0, 1), (0, 2), ..., (F-2, F-1)."""
    rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
    return rows, cols


def lookup(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rows ``table[x]``: ``[N, D]`` table, int64 indices of any shape -> ``[*x.shape, D]``.

    ``index_select`` is the same gather as ``nn.Embedding``, but its backward accumulates the
    gradient rows with ``index_add_``, several times faster on CPU than the embedding backward.
    """
    return table.index_select(0, x.reshape(-1)).view(*x.shape, table.shape[1])


def stacked_xavier(num: int, rows: int, cols: int) -> torch.Tensor:
    """``num`` matrices [rows, cols], each Xavier-normal: std = sqrt(2 / (rows + cols))."""
    return torch.randn(num, rows, cols) * (2.0 / (rows + cols)) ** 0.5


class FeatureEmbedding(nn.Module):
    """``e_f = value_f V[x_f]``: one table ``V`` of shape [num_features, dim] for all fields, Xavier-normal init.

    A numeric field's vector is scaled by its number; an index tensor input means value_f = 1.
    """

    def __init__(self, num_features: int, dim: int):
        super().__init__()
        self.table = nn.Embedding(checks.positive_int("num_features", num_features), checks.positive_int("dim", dim))
        nn.init.xavier_normal_(self.table.weight)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B, F, d]
        index, value = indices_and_values(x)
        e = lookup(self.table.weight, index)  # V[x_f]: [B, F, d]
        return e if value is None else e.mul_(value.unsqueeze(-1))  # in place: the gather's backward keeps no output


class FirstOrder(nn.Module):
    """``w_0 + sum_f w[x_f] value_f``: one weight per feature and a global bias (value_f = 1 for an index tensor).

    Both start at zero, so a model starts from its interaction terms alone (and logistic
    regression from the constant logit 0, the usual starting point of a convex fit).
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.weight = nn.Embedding(checks.positive_int("num_features", num_features), 1)
        nn.init.zeros_(self.weight.weight)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        index, value = indices_and_values(x)
        w = lookup(self.weight.weight, index)  # w[x_f]: [B, F, 1]
        return (w.sum((1, 2)) if value is None else (w.view_as(value) * value).sum(1)) + self.bias


def dropout(h: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout ``h * m / (1 - p)``, ``m ~ Bernoulli(1 - p)`` elementwise, as ``nn.Dropout`` in training.

    ``m = [u >= p]`` with u uniform on 32 bits, two draws per 64-bit random integer: on CPU this
    takes half the time of the ``bernoulli_`` behind ``F.dropout`` (a DNN step spent up to a tenth of
    its time there). P(m = 0) is p rounded to a multiple of 2^-32.
    """
    bits = torch.randint(-(2**63), 2**63 - 1, ((h.numel() + 1) // 2,), dtype=torch.int64, device=h.device)
    threshold = round(p * 2**32) - 2**31  # u >= p  <=>  bits >= threshold, bits uniform on int32
    keep = bits.view(torch.int32)[: h.numel()].view(h.shape) >= threshold
    return h * (keep * (1.0 / (1.0 - p)))


class MLP(nn.Sequential):
    """DNN tower: for each width, ``h <- Dropout(ReLU(BatchNorm(W h + b)))``.

    ``out_dim`` is the last width (``in_dim`` when ``hidden_units`` is empty). BatchNorm is
    left out with ``batch_norm=False``, Dropout when ``dropout`` is 0. In training the
    ``nn.Dropout`` modules are applied through the faster :func:`dropout`; they stay as modules
    because they hold ``p``, show in the model's repr and follow ``train()``/``eval()``.
    """

    def __init__(self, in_dim: int, hidden_units, dropout: float = 0.0, batch_norm: bool = True):
        hidden_units = checks.widths("hidden_units", hidden_units)
        dropout = checks.probability("dropout", dropout)
        batch_norm = checks.boolean("batch_norm", batch_norm)
        blocks: list[nn.Module] = []
        for width in hidden_units:
            blocks.append(xavier_linear(in_dim, width))
            if batch_norm:
                blocks.append(nn.BatchNorm1d(width))
            blocks.append(nn.ReLU())
            if dropout:
                blocks.append(nn.Dropout(dropout))
            in_dim = width
        super().__init__(*blocks)
        self.out_dim = in_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [B, in_dim] -> [B, out_dim]
        for module in self:
            h = dropout(h, module.p) if isinstance(module, nn.Dropout) and module.training else module(h)
        return h


class MLPLogit(nn.Module):
    """``w^T MLP(h) + b``: a DNN tower (:class:`MLP`) and its Xavier-normal output layer, one logit per row."""

    def __init__(self, in_dim: int, hidden_units, dropout: float = 0.0, batch_norm: bool = True):
        super().__init__()
        self.dnn = MLP(in_dim, hidden_units, dropout, batch_norm)
        self.output = xavier_linear(self.dnn.out_dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [B, in_dim] -> [B]
        return self.output(self.dnn(h)).squeeze(-1)


class BiInteraction(nn.Module):
    """NFM's bi-interaction pooling ``sum_{i<j} e_i * e_j = 0.5 ((sum_f e_f)^2 - sum_f e_f^2)``, elementwise."""

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, d]
        return 0.5 * (e.sum(1).square() - e.square().sum(1))


class FMInteraction(BiInteraction):
    """FM's pairwise term ``sum_{i<j} <e_i, e_j> = 0.5 sum_d ((sum_f e_f)^2 - sum_f e_f^2)``, in O(F d)."""

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B]
        return super().forward(e).sum(1)


class FieldAwareInteraction(nn.Module):
    """FFM's pairwise term ``sum_{i<j} <v[x_i, j], v[x_j, i]> value_i value_j`` (value = 1 for an index tensor).

    Every feature holds one d-vector per field, all in one table [num_features, F d]; viewed as
    [num_features F, d], row ``x_i F + j`` is ``v[x_i, j]``. Only the 2 P vectors the pairs use
    are gathered, straight from the table: no [B, F, F, d] lookup, and a cheap backward.
    """

    def __init__(self, num_features: int, num_fields: int, dim: int):
        super().__init__()
        self.num_fields = checks.positive_int("num_fields", num_fields)
        self.dim = checks.positive_int("dim", dim)
        self.embedding = FeatureEmbedding(num_features, num_fields * dim)
        rows, cols = field_pairs(num_fields)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        index, value = indices_and_values(x)
        vectors = self.embedding.table.weight.view(-1, self.dim)  # [num_features F, d]
        left = lookup(vectors, index.index_select(1, self.rows) * self.num_fields + self.cols)  # v[x_i, j]: [B, P, d]
        right = lookup(vectors, index.index_select(1, self.cols) * self.num_fields + self.rows)  # v[x_j, i]: [B, P, d]
        if value is None:
            return (left * right).sum((1, 2))
        weight = value.index_select(1, self.rows) * value.index_select(1, self.cols)  # value_i value_j: [B, P]
        return ((left * right).sum(2) * weight).sum(1)


class InnerProduct(nn.Module):
    """PNN's inner products ``p_ij = <e_i, e_j>`` for the P field pairs i < j: the upper triangle of ``E E^T``.

    The F x F Gram matrix by one batched matmul is faster than gathering the P pairs.
    """

    def __init__(self, num_fields: int):
        super().__init__()
        num_fields = checks.positive_int("num_fields", num_fields)
        rows, cols = field_pairs(num_fields)
        self.register_buffer("upper", rows * num_fields + cols, persistent=False)  # slots of the flat F x F

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, P]
        return torch.bmm(e, e.transpose(1, 2)).flatten(1).index_select(1, self.upper)  # [B, F, F] -> [B, P]


class OuterProduct(nn.Module):
    """PNN's outer-product scores ``p_ij = sum(e_i e_j^T * K_ij) = e_i^T K_ij e_j``, one d x d kernel per pair.

    Kernels are Xavier-normal, each as a d x d matrix: std = sqrt(2 / (d + d)). The pairs are
    taken by left field i: ``[e_i^T K_i,i+1, ..., e_i^T K_i,F-1]`` is one product of e_i with
    the side-by-side kernels, dotted with the contiguous ``e_{i+1} .. e_{F-1}``: no gathers,
    F - 1 products. Against one pair-major batched product over gathered copies, on 2 CPU threads:
    forward and backward as fast at batch 1024 and 1.5x faster at 4096, the forward at 4096 2x.
    """

    def __init__(self, num_fields: int, dim: int):
        super().__init__()
        rows, _ = field_pairs(checks.positive_int("num_fields", num_fields))
        dim = checks.positive_int("dim", dim)
        self.kernel = nn.Parameter(stacked_xavier(len(rows), dim, dim))  # [P, d, d]
        ends = torch.bincount(rows, minlength=num_fields).cumsum(0).tolist()  # pairs of left field i end here
        self.blocks = list(zip([0, *ends[:-1]], ends, strict=True))[: num_fields - 1]

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # [B, F, d] -> [B, P]
        batch, _, d = e.shape
        fields = e.unbind(1)  # F x [B, d], one backward node for all (slices would make one each)
        kernels = self.kernel.permute(1, 0, 2).reshape(d, -1)  # [d, P d], column block p is K_p
        scores = []
        for i, (start, end) in enumerate(self.blocks):
            left = fields[i] @ kernels[:, start * d : end * d]  # e_i^T K_ij for j > i: [B, (F-1-i) d]
            scores.append((left.view(batch, -1, d) * e[:, i + 1 :]).sum(-1))  # [B, F-1-i]
        return torch.cat(scores, dim=1) if scores else e.new_zeros(batch, 0)  # one field: no pairs


class CrossLayer(nn.Module):
    """DCN-V2 full-rank cross ``x_{l+1} = x_0 * (W x_l + b) + x_l``; W [M, M] is ``.weight``, b [M] is ``.bias``."""

    def __init__(self, in_dim: int):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        self.weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(in_dim, in_dim)))
        self.bias = nn.Parameter(torch.zeros(in_dim))

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # [B, M], [B, M] -> [B, M]
        return x0 * F.linear(x, self.weight, self.bias) + x


class MixtureCrossLayer(nn.Module):
    """DCN-Mix cross ``x_{l+1} = sum_i g_i(x_l) E_i(x_l) + x_l`` over k low-rank experts.

    - ``expert_form="study"``: ``E_i(x) = x_0 * (U_i V_i^T x + b_i)``;
      ``"paper"``: ``E_i(x) = x_0 * (U_i tanh(C_i tanh(V_i^T x)) + b_i)``, tanh as in the
      DCN-V2 paper's reference code (bounded, so the r-dimensional code stays in range).
    - gate ``g = softmax(G x_l + c)`` over the experts, or a ``sigmoid`` per expert.

    U, V are [k, M, r], C [k, r, r], b [k, M]. As x_0 is common to all experts,
    ``sum_i g_i E_i = x_0 * (sum_i U_i (g_i z_i) + sum_i g_i b_i)`` with z_i the rank-r code.
    With the experts side by side, the codes are one [B, M] x [M, k r] product and the mixture
    one [B, k r] x [k r, M] product; C acts on each code through a block-diagonal [k r, k r].
    Plain 2-D products run about 1.1x faster on CPU, forward and backward, than batched einsums.
    """

    def __init__(
        self, in_dim: int, rank: int = 16, num_experts: int = 4, gate: str = "softmax", expert_form: str = "study"
    ):
        super().__init__()
        in_dim = checks.positive_int("in_dim", in_dim)
        rank = checks.positive_int("rank", rank)
        num_experts = checks.positive_int("num_experts", num_experts)
        gate = checks.one_of("gate", gate, ("softmax", "sigmoid"))
        expert_form = checks.one_of("expert_form", expert_form, ("study", "paper"))
        self.U = nn.Parameter(stacked_xavier(num_experts, in_dim, rank))  # [k, M, r]
        self.V = nn.Parameter(stacked_xavier(num_experts, in_dim, rank))  # [k, M, r]
        self.C = nn.Parameter(stacked_xavier(num_experts, rank, rank)) if expert_form == "paper" else None
        self.bias = nn.Parameter(torch.zeros(num_experts, in_dim))  # [k, M]
        self.gate = nn.Sequential(
            xavier_linear(in_dim, num_experts), nn.Softmax(dim=-1) if gate == "softmax" else nn.Sigmoid()
        )

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # [B, M], [B, M] -> [B, M]
        k, m, r = self.U.shape
        g = self.gate(x)  # [B, k]
        z = x @ self.V.transpose(0, 1).reshape(m, k * r)  # z_i = V_i^T x, side by side: [B, k r]
        if self.C is not None:
            block_diagonal = (self.C.unsqueeze(2) * torch.eye(k, dtype=x.dtype).view(k, 1, k, 1)).reshape(k * r, -1)
            z = torch.tanh(F.linear(torch.tanh(z), block_diagonal))  # C_i z_i for each i
        weighted = (z.view(-1, k, r) * g.unsqueeze(-1)).view(-1, k * r)  # g_i z_i: [B, k r]
        mixed = torch.addmm(g @ self.bias, weighted, self.U.transpose(0, 1).reshape(m, k * r).t())  # [B, M]
        return x0 * mixed + x


class CrossStack(nn.Module):
    """``x_{l+1} = layer_l(x_0, x_l)`` from ``x_0`` = the input; ``layers`` holds the cross layers in order."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:  # [B, M] -> [B, M]
        x = x0
        for layer in self.layers:
            x = layer(x0, x)
        return x


class CrossNet(CrossStack):
    """DCN-V2 cross network: ``num_layers`` full-rank :class:`CrossLayer` s of width ``in_dim``."""

    def __init__(self, in_dim: int, num_layers: int):
        super().__init__([CrossLayer(in_dim) for _ in range(checks.positive_int("num_layers", num_layers))])

    def cross_weights(self) -> list[nn.Parameter]:
        """The M x M matrices W_1 .. W_L in layer order (the parameters themselves: SVD them, or copy into them)."""
        return [layer.weight for layer in self.layers]


class MixtureCrossNet(CrossStack):
    """DCN-Mix cross network: ``num_layers`` :class:`MixtureCrossLayer` s of width ``in_dim``."""

    def __init__(
        self,
        in_dim: int,
        num_layers: int,
        rank: int = 16,
        num_experts: int = 4,
        gate: str = "softmax",
        expert_form: str = "study",
    ):
        num_layers = checks.positive_int("num_layers", num_layers)
        super().__init__(
            [MixtureCrossLayer(in_dim, rank, num_experts, gate, expert_form) for _ in range(num_layers)]
        )
