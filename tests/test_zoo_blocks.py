"""The zoo's blocks (DCN v1, GDCN, CIN, AutoInt, FiBiNET, FinalMLP, MaskNet, Wukong) against brute-force loops
over fields, pairs, heads and blocks, and their parameter counts against each paper's formula."""

import pytest
import torch
from torch.testing import assert_close

from models.layers import CrossStack
from models.layers_attention import BilinearInteraction, FieldSelfAttention, SqueezeExcitation
from models.layers_cross import CompressedInteraction, GatedCrossLayer, RankOneCrossLayer
from models.layers_gating import FeatureSelectionGate, MaskBlocks, MultiHeadBilinearFusion
from models.layers_wukong import FactorizationMachineBlock, LinearCompressionBlock, WukongLayer

B, F, D = 5, 6, 3  # rows, fields, embedding size
PAIRS = [(i, j) for i in range(F) for j in range(i + 1, F)]


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def randomise(module):
    """Every parameter drawn anew, so zero-initialised biases and unit LayerNorm gains take part in the check."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


def test_rank_one_cross_stack_equals_formula_and_has_2m_parameters_per_layer():
    M = 7
    net = randomise(CrossStack([RankOneCrossLayer(M) for _ in range(3)]))
    x0 = torch.randn(B, M)
    x = x0
    for layer in net.layers:
        x = torch.stack([x0[b] * (x[b] @ layer.weight) + layer.bias + x[b] for b in range(B)])
    assert_close(net(x0), x)
    assert count(net) == 3 * 2 * M


def test_gated_cross_layer_equals_formula_and_has_2m2_plus_m_parameters():
    M = 7
    layer = randomise(GatedCrossLayer(M))
    w_c, w_g = layer.weight[:M], layer.weight[M:]
    x0, x = torch.randn(B, M), torch.randn(B, M)
    expected = torch.stack(
        [x0[b] * (w_c @ x[b] + layer.bias) * torch.sigmoid(w_g @ x[b]) + x[b] for b in range(B)]
    )
    assert_close(layer(x0, x), expected)
    assert count(layer) == 2 * M * M + M


def test_cin_equals_loop_over_maps_fields_and_layers():
    sizes = (4, 3)
    cin = CompressedInteraction(F, sizes)
    e = torch.randn(B, F, D)
    x, pooled = e, []
    for weight, h_prev in zip(cin.weights, (F, *sizes[:-1]), strict=True):
        w = weight.view(-1, h_prev, F)  # W^k_{h, i, j}
        x = torch.stack(
            [sum(w[:, i, j, None, None] * (x[:, i] * e[:, j]).unsqueeze(0) for i in range(h_prev) for j in range(F))
             [h] for h in range(w.shape[0])], dim=1)  # [B, H_k, d]
        pooled.append(x.sum(2))
    assert_close(cin(e), torch.cat(pooled, 1))
    # the hand-written backward of the outer products (both of its inputs depend on e) against finite differences
    torch.autograd.gradcheck(cin.double(), (e.double().requires_grad_(),))
    assert cin.out_dim == 7
    assert count(cin) == sum(h * h_prev * F for h, h_prev in zip(sizes, (F, *sizes[:-1]), strict=True))


def test_field_self_attention_equals_loop_over_heads_and_fields():
    d_in, d_head, heads = 4, 3, 2
    layer = FieldSelfAttention(d_in, d_head, heads)
    e = torch.randn(B, F, d_in)
    w = layer.weight.view(d_in, 4, heads, d_head)  # W_Q, W_K, W_V, W_R per head
    out = torch.empty(B, F, heads * d_head)
    for b in range(B):
        for m in range(F):
            for h in range(heads):
                q = e[b, m] @ w[:, 0, h]
                scores = torch.stack([q @ (e[b, k] @ w[:, 1, h]) for k in range(F)])
                a = torch.softmax(scores, 0)
                u = sum(a[k] * (e[b, k] @ w[:, 2, h]) for k in range(F))
                out[b, m, h * d_head:(h + 1) * d_head] = torch.relu(u + e[b, m] @ w[:, 3, h])
    assert_close(layer(e), out)
    assert count(layer) == 4 * d_in * heads * d_head


def test_squeeze_excitation_equals_formula_and_counts_2_f_f_over_r():
    se = SqueezeExcitation(F, reduction_ratio=2)
    e = torch.randn(B, F, D)
    expected = torch.empty_like(e)
    for b in range(B):
        z = torch.stack([e[b, f].mean() for f in range(F)])
        a = torch.relu(se.excite @ torch.relu(se.squeeze @ z))
        for f in range(F):
            expected[b, f] = a[f] * e[b, f]
    assert_close(se(e), expected)
    assert count(se) == 2 * F * (F // 2)
    assert count(SqueezeExcitation(F, reduction_ratio=10)) == 2 * F  # at least one squeezed unit


@pytest.mark.parametrize("kind, matrices", [("field_all", 1), ("field_each", F - 1), ("field_interaction", len(PAIRS))])
def test_bilinear_interaction_equals_pair_loop(kind, matrices):
    bilinear = BilinearInteraction(F, D, kind)
    v = torch.randn(B, F, D)

    def w(p, i):  # the matrix of pair p = (i, j)
        return bilinear.weight[{"field_all": 0, "field_each": i, "field_interaction": p}[kind]]

    expected = torch.stack([(v[:, i] @ w(p, i)) * v[:, j] for p, (i, j) in enumerate(PAIRS)], dim=1)
    assert_close(bilinear(v), expected)
    assert count(bilinear) == matrices * D * D


def test_feature_selection_gate_is_two_sigmoid_of_context_mlp():
    gate = randomise(FeatureSelectionGate(F * D, context_dim=4, hidden_units=(5,)))
    e = torch.randn(B, F * D)
    hidden = torch.relu(gate.mlp[0].weight @ gate.context[0] + gate.mlp[0].bias)
    g = 2 * torch.sigmoid(gate.output.weight @ hidden + gate.output.bias)
    assert_close(gate(e), torch.stack([g * e[b] for b in range(B)]))
    assert count(gate) == 4 + (4 * 5 + 5) + (5 * F * D + F * D)


def test_multi_head_bilinear_fusion_equals_loop_over_heads():
    d1, d2, k = 6, 9, 3
    fusion = randomise(MultiHeadBilinearFusion(d1, d2, k))
    o1, o2 = torch.randn(B, d1), torch.randn(B, d2)
    expected = torch.stack([
        fusion.bias[0] + o1[b] @ fusion.w1 + o2[b] @ fusion.w2
        + sum(o1[b, h * 2:(h + 1) * 2] @ fusion.weight[h] @ o2[b, h * 3:(h + 1) * 3] for h in range(k))
        for b in range(B)
    ])
    assert_close(fusion(o1, o2), expected)
    assert count(fusion) == d1 + d2 + d1 * d2 // k + 1
    with pytest.raises(ValueError, match="num_heads must divide both stream widths 6 and 9, got 2"):
        MultiHeadBilinearFusion(d1, d2, 2)


def test_mask_blocks_equal_loop_over_blocks():
    m, n, out, k, r = 8, 5, 4, 3, 2
    blocks = randomise(MaskBlocks(m, n, out, num_blocks=k, reduction_ratio=r))
    e, h = torch.randn(B, m), torch.randn(B, n)
    w1 = blocks.aggregate.weight.view(k, r * n, m)
    b1 = blocks.aggregate.bias.view(k, r * n)
    outputs = []
    for i in range(k):
        mask = torch.relu(e @ w1[i].T + b1[i]) @ blocks.project[i] + blocks.project_bias[i, 0]
        hidden = (mask * h) @ blocks.hidden[i]
        normed = torch.nn.functional.layer_norm(hidden, (out,), blocks.norm_weight[i, 0], blocks.norm_bias[i, 0])
        outputs.append(torch.relu(normed))
    assert_close(blocks(e, h), torch.cat(outputs, 1))
    per_block = r * n * m + r * n + r * n * n + n + n * out + 2 * out
    assert count(blocks) == k * per_block


def test_fm_block_equals_pairwise_dot_products():
    n, n_out, rank = 4, 3, 2
    fmb = randomise(FactorizationMachineBlock(n, D, n_out, rank, hidden_units=(6,)))
    x = torch.randn(B, n, D)
    dots = torch.stack([torch.stack([(x[:, i] * x[:, j]).sum(1) for j in range(n)], 1) for i in range(n)], 1)
    compressed = torch.einsum("bij,jk->bik", dots, fmb.compress).flatten(1)  # (X X^T) Y
    expected = fmb.output(fmb.mlp(fmb.norm(compressed))).view(B, n_out, D)
    assert_close(fmb(x), expected)
    assert count(fmb) == n * rank + 2 * n * rank + (n * rank * 6 + 6) + (6 * n_out * D + n_out * D)


@pytest.mark.parametrize("num_inputs", [4, 5])
def test_wukong_layer_equals_formula(num_inputs):
    n_fm, n_lc = 2, 3
    layer = randomise(WukongLayer(num_inputs, D, n_fm, n_lc, rank=2, hidden_units=(6,)))
    x = torch.randn(B, num_inputs, D)
    lcb = torch.stack([torch.stack([sum(layer.lcb.weight[o, i] * x[b, i] for i in range(num_inputs))
                                    for o in range(n_lc)]) for b in range(B)])
    skip = x if num_inputs == n_fm + n_lc else torch.einsum("oi,bid->bod", layer.residual.weight, x)
    expected = layer.norm((torch.cat([layer.fmb(x), lcb], 1) + skip).flatten(1)).view(B, -1, D)
    assert_close(layer(x), expected)
    residual = 0 if num_inputs == n_fm + n_lc else (n_fm + n_lc) * num_inputs
    assert count(layer) == count(layer.fmb) + n_lc * num_inputs + residual + 2 * (n_fm + n_lc) * D
    assert count(LinearCompressionBlock(num_inputs, n_lc)) == n_lc * num_inputs


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CompressedInteraction(F, ()), r"layer_sizes must name at least one CIN layer"),
        (lambda: CompressedInteraction(F, (4, 0)), r"layer_sizes must be a sequence of positive integers"),
        (lambda: BilinearInteraction(F, D, "pairwise"), r"bilinear_type must be one of \['field_all', 'field_each', "
                                                        r"'field_interaction'\], got 'pairwise'"),
        (lambda: FieldSelfAttention(D, num_heads=0), r"num_heads must be a positive integer, got 0"),
        (lambda: SqueezeExcitation(F, reduction_ratio=0), r"reduction_ratio must be a positive integer, got 0"),
        (lambda: MaskBlocks(8, 4, 4, num_blocks=0), r"num_blocks must be a positive integer, got 0"),
        (lambda: FactorizationMachineBlock(4, D, 2, rank=0), r"rank must be a positive integer, got 0"),
    ],
)
def test_invalid_block_arguments_say_value_and_expectation(make, message):
    with pytest.raises(ValueError, match=message):
        make()
