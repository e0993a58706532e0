"""Each shared block against its formula written as a brute-force loop over field pairs or experts."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from data import Features, Field, Schema
from data.schema import NUMBER, NUMBER_MISSING
from models.layers import (
    MLP,
    BiInteraction,
    CrossLayer,
    CrossNet,
    FeatureEmbedding,
    FieldAwareInteraction,
    FirstOrder,
    FMInteraction,
    InnerProduct,
    MixtureCrossLayer,
    MixtureCrossNet,
    OuterProduct,
    field_pairs,
)

B, F, D = 5, 6, 3  # rows, fields, embedding size
PAIRS = [(i, j) for i in range(F) for j in range(i + 1, F)]


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_field_pairs_are_upper_triangle_in_row_major_order():
    rows, cols = field_pairs(F)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == PAIRS


def test_feature_embedding_and_first_order():
    x = torch.randint(0, 20, (B, F))
    emb = FeatureEmbedding(20, D)
    assert emb(x).shape == (B, F, D)
    assert_close(emb(x)[1, 2], emb.table.weight[x[1, 2]])

    first = FirstOrder(20)
    assert_close(first(x), torch.zeros(B))  # zero init
    with torch.no_grad():
        first.weight.weight.normal_()
        first.bias.fill_(0.5)
    expected = torch.stack([0.5 + sum(first.weight.weight[x[b, f], 0] for f in range(F)) for b in range(B)])
    assert_close(first(x), expected)


def random_features(num_features=20, seed=0):
    """Indices of ``[B, F]`` rows with values drawn normal (some negative, some far from 1)."""
    g = torch.Generator().manual_seed(seed)
    return Features(torch.randint(0, num_features, (B, F), generator=g), 2 * torch.randn(B, F, generator=g))


def test_feature_embedding_and_first_order_scale_by_the_values():
    x = random_features()
    emb = FeatureEmbedding(20, D)
    table = emb.table.weight
    expected = torch.stack([torch.stack([x.value[b, f] * table[x.index[b, f]] for f in range(F)]) for b in range(B)])
    assert_close(emb(x), expected)

    first = FirstOrder(20)
    with torch.no_grad():
        first.weight.weight.normal_()
        first.bias.fill_(0.5)
    w = first.weight.weight[:, 0]
    expected = torch.stack([0.5 + sum(w[x.index[b, f]] * x.value[b, f] for f in range(F)) for b in range(B)])
    assert_close(first(x), expected)


def test_embedding_is_linear_in_a_fields_value_and_the_index_path_is_value_one():
    x = random_features()
    emb, first = FeatureEmbedding(20, D), FirstOrder(20)
    with torch.no_grad():
        first.weight.weight.normal_()
    doubled = x.value.clone()
    doubled[:, 2] *= 3.0
    assert_close(emb(Features(x.index, doubled))[:, 2], 3.0 * emb(x)[:, 2])
    assert torch.equal(emb(Features(x.index, doubled))[:, 3], emb(x)[:, 3])
    ones = Features(x.index, torch.ones(B, F))
    assert torch.equal(emb(ones), emb(x.index))
    assert_close(first(ones), first(x.index), rtol=0, atol=1e-6)
    zeroed = Features(x.index, torch.zeros(B, F))
    assert_close(first(zeroed), first.bias.expand(B))  # value 0: the feature's weight drops out


def test_a_missing_number_has_its_own_vector():
    schema = Schema([Field("c", 3), Field("n", 2, kind="numeric")])
    number, missing = schema.global_index("n", NUMBER), schema.global_index("n", NUMBER_MISSING)
    x = Features(torch.tensor([[0, number], [1, number], [0, missing]]), torch.tensor([[1.0, 0.5], [1, -2], [1, 1]]))
    emb = FeatureEmbedding(schema.num_features, D)
    e = emb(x)
    table = emb.table.weight
    assert_close(e[0, 1], 0.5 * table[number])
    assert_close(e[1, 1], -2.0 * table[number])
    assert_close(e[2, 1], table[missing])  # not a multiple of the number's vector: its own learned vector
    assert not torch.allclose(e[2, 1] / e[2, 1].norm(), table[number] / table[number].norm())


def test_fm_and_bi_interaction_equal_pair_loop():
    e = torch.randn(B, F, D)
    bi = sum(e[:, i] * e[:, j] for i, j in PAIRS)
    assert_close(BiInteraction()(e), bi)
    assert_close(FMInteraction()(e), bi.sum(1))


def test_field_aware_interaction_equals_pair_loop():
    num_features = 20
    ffm = FieldAwareInteraction(num_features, F, D)
    x = torch.randint(0, num_features, (B, F))
    v = ffm.embedding.table.weight.view(num_features, F, D)  # v[feature, field]
    expected = torch.stack(
        [sum(v[x[b, i], j] @ v[x[b, j], i] for i, j in PAIRS) for b in range(B)]
    )
    assert_close(ffm(x), expected)


def test_field_aware_interaction_with_values_equals_pair_loop():
    num_features = 20
    ffm = FieldAwareInteraction(num_features, F, D)
    x = random_features(num_features)
    v = ffm.embedding.table.weight.view(num_features, F, D)
    i_, v_ = x.index, x.value
    expected = torch.stack(
        [sum((v[i_[b, i], j] @ v[i_[b, j], i]) * v_[b, i] * v_[b, j] for i, j in PAIRS) for b in range(B)]
    )
    assert_close(ffm(x), expected)
    assert_close(ffm(Features(x.index, torch.ones(B, F))), ffm(x.index))


def test_inner_and_outer_products_equal_pair_loop():
    e = torch.randn(B, F, D)
    inner = torch.stack([(e[:, i] * e[:, j]).sum(-1) for i, j in PAIRS], dim=1)
    assert_close(InnerProduct(F)(e), inner)

    outer = OuterProduct(F, D)
    assert outer.kernel.shape == (len(PAIRS), D, D)
    outer_ij = [torch.einsum("bd,be->bde", e[:, i], e[:, j]) for i, j in PAIRS]  # e_i e_j^T: [B, d, d]
    expected = torch.stack([(o * k).sum((1, 2)) for o, k in zip(outer_ij, outer.kernel, strict=True)], dim=1)
    assert_close(outer(e), expected)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_mlp_structure(batch_norm):
    mlp = MLP(10, (8, 4), dropout=0.2, batch_norm=batch_norm)
    per_width = [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout] if batch_norm else [nn.Linear, nn.ReLU, nn.Dropout]
    assert [type(m) for m in mlp] == per_width * 2
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == [8, 4]
    assert mlp.out_dim == 4
    assert all(torch.all(m.bias == 0) for m in mlp if isinstance(m, nn.Linear))
    assert mlp(torch.randn(B, 10)).shape == (B, 4)
    assert [type(m) for m in MLP(10, (8,), dropout=0.0)] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert MLP(10, ()).out_dim == 10


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MLP(10, (8,), dropout=-0.1), r"dropout must be a number in \[0, 1\), got -0.1"),
        (lambda: MLP(10, (8, 0)), r"hidden_units must be a sequence of positive integers"),
        (lambda: MixtureCrossLayer(8, rank=0), r"rank must be a positive integer, got 0"),
        (lambda: MixtureCrossLayer(8, gate="relu"), r"gate must be one of \['softmax', 'sigmoid'\], got 'relu'"),
        (lambda: MixtureCrossLayer(8, expert_form="x"), r"expert_form must be one of"),
        (lambda: CrossNet(8, num_layers=0), r"num_layers must be a positive integer, got 0"),
    ],
)
def test_invalid_arguments_say_value_and_expectation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_cross_net_equals_explicit_formula():
    M = 7
    net = CrossNet(M, num_layers=3)
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.normal_()
    x0 = torch.randn(B, M)
    x = x0
    for W, layer in zip(net.cross_weights(), net.layers, strict=True):
        assert W is layer.weight and W.shape == (M, M)
        x = x0 * (x @ W.T + layer.bias) + x
    assert_close(net(x0), x)


def test_one_expert_full_rank_mixture_equals_cross_layer():
    M = 6
    cross = CrossLayer(M)
    with torch.no_grad():
        cross.bias.normal_()
    mix = MixtureCrossLayer(M, rank=M, num_experts=1, gate="softmax")
    with torch.no_grad():
        mix.U.copy_(cross.weight.unsqueeze(0))  # U V^T = W with V = I
        mix.V.copy_(torch.eye(M).unsqueeze(0))
        mix.bias.copy_(cross.bias.unsqueeze(0))
        mix.gate[0].weight.normal_()  # a softmax over one expert is 1 whatever the gate logits
    x0, x = torch.randn(B, M), torch.randn(B, M)
    assert_close(mix(x0, x), cross(x0, x))


@pytest.mark.parametrize("expert_form", ["study", "paper"])
@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_mixture_equals_loop_over_experts(gate, expert_form):
    M, r, k = 8, 3, 4
    mix = MixtureCrossLayer(M, rank=r, num_experts=k, gate=gate, expert_form=expert_form)
    with torch.no_grad():
        mix.bias.normal_()
    x0, x = torch.randn(B, M), torch.randn(B, M)
    logits = mix.gate[0](x)
    g = torch.softmax(logits, -1) if gate == "softmax" else torch.sigmoid(logits)
    expected = x.clone()
    for i in range(k):
        z = x @ mix.V[i]
        if expert_form == "paper":
            z = torch.tanh(torch.tanh(z) @ mix.C[i].T)
        expected = expected + g[:, i : i + 1] * (x0 * (z @ mix.U[i].T + mix.bias[i]))
    assert_close(mix(x0, x), expected)


@pytest.mark.parametrize(
    "expert_form, per_layer",
    [("study", lambda M, r, k: k * (2 * M * r + M) + M * k + k),
     ("paper", lambda M, r, k: k * (2 * M * r + r * r + M) + M * k + k)],
)
def test_mixture_cross_net_shapes_and_parameter_count(expert_form, per_layer):
    M, r, k = 160, 16, 4
    net = MixtureCrossNet(M, num_layers=2, rank=r, num_experts=k, expert_form=expert_form)
    layer = net.layers[0]
    assert layer.U.shape == layer.V.shape == (k, M, r) and layer.bias.shape == (k, M)
    assert (layer.C is None) == (expert_form == "study")
    assert sum(p.numel() for p in net.parameters()) == 2 * per_layer(M, r, k)
    assert net(torch.randn(B, M)).shape == (B, M)


def test_dropout_keeps_one_minus_p_and_rescales():
    from models.layers import dropout

    h = torch.ones(400, 500)
    for p in (0.1, 0.5):
        out = dropout(h, p)
        assert abs((out == 0).float().mean().item() - p) < 0.01
        assert out.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    torch.manual_seed(3)
    first = dropout(h, 0.1)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(h, 0.1))  # seeded like any torch draw


def test_mlp_dropout_only_in_training():
    mlp = MLP(10, (8,), dropout=0.5, batch_norm=False)
    x = torch.randn(B, 10)
    mlp.eval()
    assert torch.equal(mlp(x), mlp[1](mlp[0](x)))
    mlp.train()
    assert (mlp(x) == 0).sum() > (mlp[1](mlp[0](x)) == 0).sum()
