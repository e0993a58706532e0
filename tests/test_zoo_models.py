"""The zoo's families at their defaults on the synthetic schema: the registry, parameter counts from each paper's
formula, invalid values and tracing. Gradients, batch 1, determinism and a short fit of every family and variant
run in tests/test_models.py."""

import warnings

import pytest
import torch

import data
import models
from benchmarks.harness.config import load_config
from benchmarks.harness.records import canonical

SCHEMA = data.load("synthetic", rows=100).schema  # 10 fields, 72 features
NF, F, D = 72, 10, 16
M = F * D
P = F * (F - 1) // 2
ZOO = ["dnn", "wide_deep", "dcn_v1", "xdeepfm", "autoint", "fibinet", "finalmlp", "gdcn", "masknet", "wukong"]


def mlp(in_dim, widths, batch_norm=True):
    """Parameters of Linear (+ BatchNorm) layers of ``widths`` from ``in_dim``."""
    total = 0
    for w in widths:
        total += in_dim * w + w + (2 * w if batch_norm else 0)
        in_dim = w
    return total


EMBEDDING, FIRST_ORDER = NF * D, NF + 1
TOWER = mlp(M, (128, 64, 32)) + 32 + 1  # the study's DNN and its output layer on the flat embeddings


def mask_block(m, n, out):  # reduction ratio 1: aggregation r N M + r N, projection r N N + N, hidden N out, LN 2 out
    return n * m + n + n * n + n + n * out + 2 * out


def wukong_layer(n_in, n_fm=8, n_lc=8, rank=8, hidden=64):
    fmb = n_in * rank + 2 * n_in * rank + (n_in * rank * hidden + hidden) + (hidden * n_fm * D + n_fm * D)
    residual = 0 if n_in == n_fm + n_lc else (n_fm + n_lc) * n_in
    return fmb + n_lc * n_in + residual + 2 * (n_fm + n_lc) * D


def gate(hidden=64):
    return D + (D * hidden + hidden) + (hidden * M + M)


# Each default's parameter count from its paper's formula, at the defaults stated in the model's docstring.
EXPECTED_PARAMETERS = {
    "dnn": EMBEDDING + TOWER,
    "wide_deep": FIRST_ORDER + EMBEDDING + TOWER,
    "dcn_v1": EMBEDDING + 6 * 2 * M + mlp(M, (128, 64, 32)) + (M + 32) + 1,
    "gdcn": EMBEDDING + 2 * (2 * M * M + M) + mlp(M, (128, 64, 32)) + (M + 32) + 1,
    "xdeepfm": FIRST_ORDER + EMBEDDING + (16 * F * F + 16 * 16 * F) + (32 + 1) + TOWER,
    "autoint": EMBEDDING + 4 * D * 32 + (F * 32 + 1) + TOWER,
    "fibinet": FIRST_ORDER + EMBEDDING + 2 * F * (F // 3) + P * D * D + mlp(2 * P * D, (128, 64, 32)) + 33,
    "finalmlp": EMBEDDING + 2 * gate() + mlp(M, (128, 128, 128)) + mlp(M, (256,)) + (128 + 256 + 128 * 256 // 8 + 1),
    "masknet": EMBEDDING + 2 * D + mask_block(M, M, 64) + 2 * mask_block(M, 64, 64) + mlp(64, (128, 64, 32)) + 33,
    "wukong": EMBEDDING + wukong_layer(F) + wukong_layer(16) + mlp(16 * D, (128, 64, 32)) + 33,
}


def rows(n, seed=0):
    return torch.randint(0, NF, (n, F), generator=torch.Generator().manual_seed(seed))


def test_available_lists_study_and_zoo_families():
    study = ["lr", "fm", "ffm", "pnn", "deepfm", "nfm", "dcn_v2", "dcn_mix"]
    assert models.available() == sorted(study + ZOO + ["lr_sklearn"])
    assert len(models.available()) == 19


def test_default_config_runs_every_family_and_tags_the_zoo():
    config = load_config()
    assert {e.model for e in config.entries} == set(models.available())
    assert {e.label: e.model for e in config.group("zoo")} == {
        "DNN": "dnn", "Wide&Deep": "wide_deep", "DCN": "dcn_v1", "xDeepFM": "xdeepfm", "AutoInt+": "autoint",
        "FiBiNET": "fibinet", "FinalMLP": "finalmlp", "GDCN": "gdcn", "MaskNet": "masknet", "Wukong": "wukong",
    }
    assert all(e.hparams == canonical(models.defaults(e.model)) for e in config.group("zoo"))  # registry defaults


@pytest.mark.parametrize("name", ZOO)
def test_default_parameter_count_follows_the_papers_formula(name):
    assert models.count_parameters(models.build(name, SCHEMA)) == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize(
    "name, hparams, expected",
    [
        ("autoint", {"use_dnn": False}, EXPECTED_PARAMETERS["autoint"] - TOWER),
        ("finalmlp", {"use_gates": False}, EXPECTED_PARAMETERS["finalmlp"] - 2 * gate()),
        ("fibinet", {"bilinear_type": "field_all"}, EXPECTED_PARAMETERS["fibinet"] - (P - 1) * D * D),
        ("fibinet", {"bilinear_type": "field_each"}, EXPECTED_PARAMETERS["fibinet"] - (P - F + 1) * D * D),
        ("masknet", {"mode": "parallel"},
         EMBEDDING + 2 * D + 3 * mask_block(M, M, 64) + mlp(3 * 64, (128, 64, 32)) + 33),
        ("gdcn", {"combine": "stacked"}, EXPECTED_PARAMETERS["gdcn"] - M),
    ],
)
def test_variant_parameter_counts(name, hparams, expected):
    assert models.count_parameters(models.build(name, SCHEMA, **hparams)) == expected


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("masknet", {"mode": "stacked"}, r"mode must be one of \['serial', 'parallel'\], got 'stacked'"),
        ("autoint", {"use_dnn": 1}, r"use_dnn must be True or False, got 1"),
        ("fibinet", {"bilinear_type": "all"}, r"bilinear_type must be one of \['field_all', 'field_each'"),
        ("finalmlp", {"num_heads": 7}, r"num_heads must divide both stream widths 128 and 256, got 7"),
        ("gdcn", {"combine": "mixed"}, r"combine must be one of \['parallel', 'stacked'\], got 'mixed'"),
        ("xdeepfm", {"cin_layer_sizes": ()}, r"layer_sizes must name at least one CIN layer"),
        ("wukong", {"fm_rank": 0}, r"rank must be a positive integer, got 0"),
        ("dcn_v1", {"num_layers": 0}, r"num_layers must be a positive integer, got 0"),
    ],
)
def test_invalid_values_name_model_value_and_expectation(name, hparams, message):
    with pytest.raises(ValueError, match=f"model '{name}': {message}"):
        models.build(name, SCHEMA, **hparams)


@pytest.mark.parametrize("name", ZOO)
def test_traced_model_matches_eager(name):
    torch.manual_seed(0)
    model = models.build(name, SCHEMA).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, rows(4))
        torch.testing.assert_close(traced(rows(32, seed=1)), model(rows(32, seed=1)))


@pytest.mark.parametrize("name", ZOO)
def test_a_bf16_autocast_training_step_updates_every_parameter(name):
    """``--precision bf16`` trains under CPU autocast: every block's backward (xDeepFM's hand-written one included)
    takes the mixed bf16/fp32 tensors autocast makes and hands every parameter a finite gradient."""
    from benchmarks.engine.runtime import make_optimizer
    from benchmarks.engine.step import train_step

    torch.manual_seed(0)
    model = models.build(name, SCHEMA)
    before = [p.detach().clone() for p in model.parameters()]
    loss = train_step(model, make_optimizer(model, lr=1e-2), rows(64), (torch.rand(64) < 0.5).float(), "bf16")
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
