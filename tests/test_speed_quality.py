"""Time to quality (benchmarks.speed.quality) on hand-made histories, the bare loop's per-epoch hook, the headline."""

import re

import pytest
import torch

import data
import models
from benchmarks.speed import measure, quality, render
from benchmarks.speed.cases import QUICK


def _history(*pairs):
    return [{"seconds": s, "val_auc": a} for s, a in pairs]


OURS = _history((2.0, 0.70), (4.0, 0.73), (6.0, 0.745), (8.0, 0.748))  # slower start, higher end
PEER = _history((3.0, 0.72), (6.0, 0.741), (9.0, 0.739))


def test_time_to_target_is_the_first_epoch_reaching_it():
    assert quality.time_to_target(OURS, 0.73) == (4.0, 2)  # equal counts as reached
    assert quality.time_to_target(OURS, 0.7301) == (6.0, 3)
    assert quality.time_to_target(PEER, 0.70) == (3.0, 1)
    assert quality.time_to_target(PEER, 0.75) is None


def test_common_target_is_the_lower_best_auc_and_speedup_is_peer_over_ours():
    q = quality.time_to_quality(OURS, PEER)
    assert q["target_auc"] == 0.741  # the peer's best; ours reaches it at epoch 3 (0.745), 6 s
    assert (q["ours_seconds"], q["ours_epoch"], q["peer_seconds"], q["peer_epoch"]) == (6.0, 3, 6.0, 2)
    assert q["speedup"] == 1.0
    q = quality.time_to_quality(PEER, OURS)  # roles swapped: same target, speedup inverted by the epochs' seconds
    assert (q["ours_seconds"], q["peer_seconds"], q["ours_best_auc"], q["peer_best_auc"]) == (6.0, 6.0, 0.741, 0.748)
    faster = _history((1.0, 0.74), (2.0, 0.7415))
    assert quality.time_to_quality(faster, PEER)["speedup"] == pytest.approx(6.0 / 2.0)  # target 0.741 at 2 s


@pytest.mark.parametrize("history, message", [
    ([], "history of the run is empty"),
    (_history((2.0, 0.7), (1.0, 0.71)), r"epoch 2: seconds 1.0 below the previous 2.0"),
    (_history((1.0, 1.5)), r"epoch 1: val_auc 1.5; expected within \[0, 1\]"),
    ([{"seconds": 1.0}], r"epoch 1: keys \['seconds'\]; expected 'seconds' and 'val_auc'"),
])
def test_bad_histories_are_named(history, message):
    with pytest.raises(ValueError, match=message):
        quality.time_to_target(history, 0.7)


def test_bare_loop_stops_when_the_hook_says_and_times_only_training():
    torch.manual_seed(0)
    dataset = data.load("synthetic", rows=2_000)
    model = models.build("fm", dataset.schema, embed_dim=4)
    seen = []

    def hook(seconds):
        seen.append(seconds)
        return len(seen) == 2

    total = measure.bare_loop(model, dataset.train.x, dataset.train.y, epochs=5, batch_size=512, seed=0,
                              after_epoch=hook)
    assert len(seen) == 2 and 0 < seen[0] < seen[1] == total


def test_quality_history_stops_after_patience_epochs_without_improvement():
    dataset = data.load("synthetic", rows=2_000)
    impl = measure.implementations("fm", dataset.schema, {})[0]
    settings = QUICK.__class__(**{**QUICK.__dict__, "quality_epochs": 6, "quality_patience": 1})
    model = measure.built(impl, 0)
    history = measure.quality_history(model, impl, dataset, settings, fused_adam=True)
    quality.check_history(history, "fm")
    aucs = [row["val_auc"] for row in history]
    stopped_early = len(history) < 6
    assert not stopped_early or aucs[-1] <= max(aucs[:-1])  # patience 1: the last epoch did not improve


def test_headline_table_renders_each_peer():
    entry = {"label": "DCN-V2", "quality": {"versus": {"FuxiCTR DCN": quality.time_to_quality(OURS, PEER)}}}
    report = {"settings": {"batch_size": 1024, "quality_patience": 2, "quality_epochs": 15}, "cases": {"d": entry}}
    text = re.sub(r" *\| *", " | ", "\n".join(render._render_quality(report)))
    assert "## Time to quality" in text
    assert "| DCN-V2 | FuxiCTR DCN | 0.7410 | 6.0 (3) | 6.0 (2) | **1.00x** | 0.7480 | 0.7410 |" in text
    assert render._render_quality({"settings": {}, "cases": {"d": {"label": "FM"}}}) == []


@pytest.mark.parametrize("cls", ["CrossNetV2", "CrossNetMix"])
def test_fuxictr_adapter_initialises_as_fuxictr_does(cls):
    pytest.importorskip("fuxictr")
    from benchmarks.speed import peers
    from benchmarks.speed.cases import ARCH

    torch.manual_seed(0)
    schema = data.load("synthetic", rows=2_000).schema
    model = peers._fuxictr(cls)(schema, ARCH)
    assert model.embedding.weight.std().item() == pytest.approx(1e-4, rel=0.05)  # not nn.Embedding's N(0, 1)
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    # zero biases, not nn.Linear's uniform ones
    assert linears and all(m.bias is None or torch.count_nonzero(m.bias) == 0 for m in linears)
    fan_in, fan_out = model.fc.in_features, model.fc.out_features
    xavier_std = (2 / (fan_in + fan_out)) ** 0.5
    assert model.fc.weight.std().item() == pytest.approx(xavier_std, rel=0.25)


def test_zoo_cases_take_only_the_common_keys_their_family_has(monkeypatch):
    from benchmarks.speed import cases

    assert set(cases.CASES) - set(cases.ZOO) == {"fm", "ffm", "pnn_inner", "pnn_outer", "deepfm", "nfm", "dcn_v2",
                                                 "dcn_mix"}
    assert {c for c in cases.CASES if c in cases.ZOO} == set(cases.ZOO) & set(models.available())
    monkeypatch.setitem(cases.ZOO, "dcn_v2", "DCN-V2 as a zoo stand-in")  # a registered family with a known signature
    case = cases.zoo_case("dcn_v2")
    assert case.hparams == {"embed_dim": 16, "hidden_units": (128, 64, 32), "dropout": 0.1, "num_layers": 3}
