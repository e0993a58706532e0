"""The speed report's machinery on tiny settings, and the speed levers of ``fit``: no wall-clock asserts."""

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

import data
import models
from benchmarks.engine.fit import NonFiniteLossError, fit, predict
from benchmarks.speed import cases as speed_cases
from benchmarks.speed import factors, levers, measure, peers, render, workers
from benchmarks.speed import main as speed_main
from models.layers import CrossLayer, MixtureCrossLayer


def _cells(markdown: str) -> str:
    """Tables with the column padding removed, so rows compare cell by cell."""
    return re.sub(r" *\| *", " | ", markdown)


@pytest.fixture(scope="module")
def tiny():
    return data.load("synthetic", rows=3_000)


def test_flops_of_a_cross_layer_equal_the_formula():
    B, M = 8, 12
    layer = CrossLayer(M)
    x = torch.randn(B, M)
    assert measure.count_flops(lambda: layer(x, x)) == 2 * B * M * M  # W x_l: one [B, M] x [M, M] product


def test_flops_of_a_mixture_layer_equal_the_formula():
    B, M, r, k = 4, 10, 3, 2
    layer = MixtureCrossLayer(M, rank=r, num_experts=k, expert_form="paper")
    x = torch.randn(B, M)
    products = 2 * B * M * k  # gate
    products += 2 * B * M * k * r  # V codes
    products += 2 * B * (k * r) * (k * r)  # C, as one block-diagonal [k r, k r]
    products += 2 * B * k * M  # g @ bias
    products += 2 * B * (k * r) * M  # U back
    assert measure.count_flops(lambda: layer(x, x)) == products


def test_flops_per_sample_of_dcn_v2_forward_and_training():
    schema = data.load("synthetic", rows=100).schema
    model = models.build("dcn_v2", schema, num_layers=2, hidden_units=(8, 4), embed_dim=3)
    M = schema.num_fields * 3
    forward = 2 * (2 * M * M) + 2 * (M * 8 + 8 * 4) + 2 * (M + 4)  # cross layers, DNN, output
    counted = measure.flops_per_sample(model, torch.zeros(16, schema.num_fields, dtype=torch.long) + 3)
    assert counted["forward"] == forward
    assert counted["train"] == 3 * forward  # backward: one product for the input, one for the weight
    assert all(p.grad is None for p in model.parameters())


def test_roofline_fraction():
    assert measure.roofline_fraction(1e6, 1e5, 200.0) == pytest.approx(0.5)  # 100 GFLOP/s of 200
    assert measure.roofline_fraction(0.0, 1e5, 200.0) is None  # no matrix products (FM, FFM)
    assert measure.roofline_fraction(1e6, 1e5, None) is None  # no bf16 rate on this CPU


def _entry(label, ours_fit, ours_bare, peer_rate, peer_library="pytorch-fm"):
    peer = f"{peer_library} Model"
    return {
        "label": label, "model": "fm", "hparams": {"embed_dim": 16},
        "implementations": [{"name": "ours", "library": None}, {"name": peer, "library": peer_library}],
        "flops_per_sample": {"forward": 1e5, "train": 3e5},
        "training": {
            "ours: fit": {"samples_per_s": ours_fit, "val_auc": 0.7, "train_only_samples_per_s": ours_fit},
            "ours: bare loop": {"samples_per_s": ours_bare, "val_auc": 0.7},
            f"{peer}: bare loop": {"samples_per_s": peer_rate, "val_auc": 0.69},
            f"{peer}: bare loop, our levers": {"samples_per_s": peer_rate * 1.5, "val_auc": 0.69},
            f"{peer}: own fit": {"samples_per_s": peer_rate / 2, "val_auc": 0.69},
        },
        "latency_ms": {"ours": {"1": 0.05, "4096": 2.0}, peer: {"1": "fails: IndexError: boom", "4096": 4.0}},
        "memory": {"ours": {"train_peak_mib": 3.5}, peer: {"error": "x"}},
    }


def _report(cases, peers_installed):
    settings = {**asdict(speed_cases.QUICK), "cases": list(cases), "arch": speed_cases.ARCH}
    env = {"torch": "x", "python": "3", "threads": 2, "cpu": "Test CPU", "cpu_capability": "AVX512", "bf16": True,
           "cores": 2, "peers": peers_installed}
    return {"settings": settings, "environment": env, "roofline_gflops": {"fp32": 200.0, "bf16": 800.0},
            "cases": cases, "seconds": 61.0}


def test_report_renders_from_hand_made_numbers():
    report = _report({"ffm": _entry("FFM", 300e3, 320e3, 100e3), "dcn_v2": _entry("DCN-V2", 100e3, 125e3, 90e3)},
                     {"pytorch-fm": "0.7.0", "DeepCTR-Torch": None, "FuxiCTR": None})
    text = _cells(render.render(report))
    ffm_row = "| FFM | 300k | 300k | 320k | 0.93 | pytorch-fm Model, bare loop | 100k | **3.00x** | 2.00x | 0.7000 |"
    assert ffm_row in text  # fit/bare 0.9375, rounded down
    assert "No figure below was taken on a shared CPU." in text
    assert "| FFM: ours >= 3x pytorch-fm in samples/s | 3.00 | met | pytorch-fm Model: bare loop | 2.00 |" in text
    assert "| DCN-V2: fit (evaluations included) >= 0.9x our bare loop | 0.80 | **not met** |" in text
    assert "| DCN-V2: fit (evaluations excluded) >= 0.9x our bare loop | 0.80 | **not met** |" in text
    assert "| DCN-V2: training >= 60% of the fp32 roofline | 0.15 | **not met** |" in text  # 3e5 x 1e5 / 200e9
    assert "fails: IndexError: boom" in text and "| 3.5 |" in text
    assert "Not installed, so not compared: DeepCTR-Torch, FuxiCTR" in text
    report["levers"] = [{"lever": "Adam implementation", "case": "ffm", "off": "for-loop", "on": "fused",
                         "off_ms": 2.0, "on_ms": 1.6, "speedup": 1.25, "note": ""}]
    report["bf16_parity"] = [{"case": "dcn_v2", "fp32_auc": [0.71, 0.72], "bf16_auc": [0.7105, 0.7195],
                              "fp32_samples_per_s": 100e3, "bf16_samples_per_s": 150e3}]
    report["cases"]["ffm"]["allocator"] = {"default": {"step_ms": 2.0, "forward_4096_ms": 9.0},
                                           "retain": {"step_ms": 1.5, "forward_4096_ms": 2.0}}
    text = _cells(render.render(report))
    assert "| Adam implementation | ffm | for-loop: 2.00 | fused: 1.60 | 1.25 |  |" in text
    assert "| DCN-V2 | 0.7100, 0.7200 | 0.7105, 0.7195 | 100k | 150k | 1.50 | 22% | 6% |" in text  # 3e5 x 150e3
    assert "| FFM | 2.000 -> 1.500 | 9.00 -> 2.00 |" in text
    targets = {t["target"]: t for t in render.check_targets(report)}
    assert targets["FFM: ours >= 1x the fastest peer in samples/s"]["against"] == "pytorch-fm Model: bare loop"
    assert not any(t["shared"] for t in targets.values())
    assert targets["FFM: ours >= 1.5x the fastest peer in samples/s"]["met"]  # 300k / 100k
    assert targets["DCN-V2, 3 layers: ours >= 1.5x the fastest peer in samples/s"]["met"] is False  # 100k / 90k


def test_figures_timed_on_a_shared_cpu_are_marked_with_their_targets_and_every_round_is_shown():
    report = _report({"ffm": _entry("FFM", 300e3, 320e3, 100e3), "dcn_v2": _entry("DCN-V2", 100e3, 125e3, 90e3)},
                     {"pytorch-fm": "0.7.0"})
    report["cases"]["dcn_v2"]["training"]["ours: bare loop"] |= {"shared": True, "rounds": [125e3, 98e3]}
    report["cases"]["ffm"]["latency_shared"] = ["ours, batch 4096"]
    report["cases"]["ffm"]["quality"] = {"versus": {"pytorch-fm Model": _versus(2.0, 5.0)},
                                         "shared": ["pytorch-fm Model"]}
    text = _cells(render.render(report))
    assert ("Still shared, so marked: FFM: ours, batch 4096, latency; FFM: pytorch-fm Model, time to quality; "
            "DCN-V2: ours: bare loop, samples/s.") in text
    assert "| DCN-V2: fit (evaluations included) >= 0.9x our bare loop | 0.80 | **not met** (CPU shared) |" in text
    assert "| DCN-V2, 3 layers: ours >= 1x the fastest peer in samples/s | 1.11 | met |" in text  # not shared
    assert "| FFM: time to quality >= 1x pytorch-fm Model | 2.50 | met (CPU shared) |" in text
    assert "| DCN-V2 | ours, bare loop | 125k | 125k, 98k |" in text


def test_a_ratio_is_rounded_down_so_that_its_status_agrees():
    report = _report({"ffm": _entry("FFM", 300e3, 320e3, 100e3)}, {})
    report["cases"]["ffm"]["quality"] = {"versus": {"pytorch-fm Model": _versus(2.0, 1.999)}}
    text = _cells(render.render(report))
    assert "| FFM: time to quality >= 1x pytorch-fm Model | 0.99 | **not met** |" in text
    assert "| **0.99x** |" in text


def test_factor_table_times_each_variant_to_the_best_peer_auc():
    as_is, lr = next(iter(factors.FACTORS)), "lr 3e-3"
    histories = {as_is: [{"seconds": 10.0, "val_auc": 0.70}, {"seconds": 20.0, "val_auc": 0.74},
                         {"seconds": 30.0, "val_auc": 0.75}],
                 lr: [{"seconds": 10.0, "val_auc": 0.735}, {"seconds": 20.0, "val_auc": 0.73}],
                 "no BatchNorm": [{"seconds": 12.0, "val_auc": 0.74}, {"seconds": 24.0, "val_auc": 0.745}]}
    peers = {"ours": [{"seconds": 1.0, "val_auc": 0.9}],  # ours is not a peer: its best is not the target
             "FuxiCTR DCN": [{"seconds": 5.0, "val_auc": 0.72}, {"seconds": 9.0, "val_auc": 0.74}]}
    table = factors.factor_rows(histories, peers)
    rows = {r["factor"]: r for r in table["rows"]}
    assert table["target_auc"] == 0.74
    assert (rows[as_is]["seconds"], rows[as_is]["epoch"], rows[as_is]["vs_as_is"]) == (20.0, 2, 1.0)
    assert rows[lr]["seconds"] is None and rows[lr]["best_epoch"] == 1 and rows[lr]["epoch1_auc"] == 0.735
    assert rows["no BatchNorm"]["vs_as_is"] == pytest.approx(20.0 / 12.0)
    report = _report({"dcn_v2": _entry("DCN-V2", 100e3, 125e3, 90e3)}, {})
    report["factors"] = {"case": "dcn_v2", **table}
    text = _cells(render.render(report))
    assert "## First epochs: one factor at a time (DCN-V2, ours)" in text
    assert "| lr 3e-3 | 0.7350 | 0.7350 (1) | not reached | - |" in text
    assert "| no BatchNorm | 0.7400 | 0.7450 (2) | 12.0 (1) | 1.67x |" in text


def test_a_factor_task_trains_ours_with_that_factor_changed(tiny):
    settings = speed_cases.QUICK
    for factor in ("no BatchNorm", "embeddings N(0, 1e-4^2), as FuxiCTR", "batch 4096"):
        history = measure.execute({"kind": "factor", "case": "dcn_v2", "factor": factor}, tiny, settings, {})["history"]
        assert 1 <= len(history) <= settings.quality_epochs and 0.3 < history[-1]["val_auc"] < 1.0
    plain = measure.execute({"kind": "factor", "case": "dcn_v2", "factor": next(iter(factors.FACTORS))}, tiny,
                            settings, {})["history"]
    assert plain != history  # the factor changed the run


def test_embedding_initialisers_draw_what_each_library_draws():
    table = torch.nn.Sequential(torch.nn.Embedding(4000, 16))
    factors.initialise_embeddings(table, "fuxictr")
    assert table[0].weight.std().item() == pytest.approx(1e-4, rel=0.05)
    factors.initialise_embeddings(table, "normal")
    assert table[0].weight.std().item() == pytest.approx(1.0, rel=0.05)
    factors.initialise_embeddings(table, "xavier_uniform")
    bound = (6 / (4000 + 16)) ** 0.5
    assert table[0].weight.abs().max().item() <= bound and table[0].weight.abs().max().item() > 0.9 * bound
    with pytest.raises(ValueError, match="embedding_init 'zeros'"):
        factors.initialise_embeddings(table, "zeros")


def test_profiles_are_shown_only_for_families_with_an_unmet_target():
    report = _report({"ffm": _entry("FFM", 300e3, 320e3, 100e3), "dcn_v2": _entry("DCN-V2", 100e3, 125e3, 90e3)},
                     {})
    report["cases"]["ffm"]["training"]["ours: bare loop"]["samples_per_s"] = 300e3  # every FFM target met
    operator = {"operator": "aten::mm", "self_ms_per_step": 1.25, "share": 0.5, "calls_per_step": 12}
    report["profiles"] = {"dcn_v2": [operator], "ffm": [operator]}
    report["cases"]["ffm"]["quality"] = {"versus": {"pytorch-fm Model": _versus(2.0, 4.0)}}
    text = _cells(render.render(report))
    assert "### Profile: DCN-V2, one training step of ours" in text and "| aten::mm | 1.250 | 50% | 12 |" in text
    assert "### Profile: FFM" not in text


def _versus(ours_seconds, peer_seconds):
    return {"target_auc": 0.74, "ours_seconds": ours_seconds, "ours_epoch": 2, "ours_best_auc": 0.745,
            "peer_seconds": peer_seconds, "peer_epoch": 3, "peer_best_auc": 0.74,
            "speedup": peer_seconds / ours_seconds}


def test_time_to_quality_is_a_target_per_peer_and_a_slower_one_brings_the_profile():
    report = _report({"ffm": _entry("FFM", 300e3, 320e3, 100e3)}, {})
    operator = {"operator": "aten::bmm", "self_ms_per_step": 0.5, "share": 0.25, "calls_per_step": 3}
    report["profiles"] = {"ffm": [operator]}
    report["cases"]["ffm"]["quality"] = {"versus": {"pytorch-fm Model": _versus(2.0, 5.0)}}
    text = _cells(render.render(report))
    assert "| FFM: time to quality >= 1x pytorch-fm Model | 2.50 | met |" in text
    assert "### Profile: FFM" not in text  # every target met
    report["cases"]["ffm"]["quality"]["versus"]["pytorch-fm Model"] = _versus(4.0, 3.0)
    text = _cells(render.render(report))
    assert "| FFM: time to quality >= 1x pytorch-fm Model | 0.75 | **not met** |" in text
    assert "### Profile: FFM, one training step of ours" in text


def test_report_says_when_no_peer_is_installed(tiny):
    assert measure.implementations("ffm", tiny.schema, {lib: None for lib in peers.LIBRARIES})[1:] == []
    line = render._peers_line({lib: None for lib in peers.LIBRARIES})
    assert line.startswith("Peers: none installed.") and peers.INSTALL_HINT in line
    entry = _entry("FM", 1e6, 1e6, 1.0)
    entry["implementations"] = entry["implementations"][:1]
    entry["training"] = {k: v for k, v in entry["training"].items() if k.startswith("ours")}
    report = _report({"fm": entry}, {lib: None for lib in peers.LIBRARIES})
    text = _cells(render.render(report))
    assert "| FM: ours >= 1x the fastest peer in samples/s | - | not measured | not installed |" in text
    assert "| FM | 1,000k | 1,000k | 1,000k | 1.00 | - | - | - |" in text


def test_quick_run_of_our_models_end_to_end(tiny, tmp_path):
    settings = speed_cases.Settings(rows=3_000, rounds=1, latency_repeats=1, peers=False, memory=False, levers=False)
    report = speed_main.run(settings, ["fm", "dcn_mix"], log=lambda _: None)
    render.write(report, tmp_path / "speed.md")
    text = _cells((tmp_path / "speed.md").read_text())
    assert "Peers: not measured (`--no-peers`)." in text and "DCN-Mix, 3 layers" in text
    assert (tmp_path / "speed.json").exists()
    assert report["cases"]["fm"]["flops_per_sample"]["forward"] == 0  # gathers and elementwise only
    assert report["cases"]["dcn_mix"]["training"]["ours: fit"]["samples_per_s"] > 0
    operators = report["profiles"]["dcn_mix"]
    assert len(operators) == factors.PROFILE_TOP and all(o["self_ms_per_step"] > 0 for o in operators)
    assert "factors" not in report  # the factor study runs with its case only
    served = report["cases"]["dcn_mix"]["latency_ms"].get(measure.ONNX_RUNTIME_IMPL)
    if measure.onnxruntime_available():
        assert served["1"] > 0 and served["4096"] > 0
        serving = text.split("## Serving: eager PyTorch and ONNX Runtime")[1].split("##")[0]
        assert f"| {report['cases']['dcn_mix']['label']} |" in serving
    else:
        assert served is None and "## Serving" not in text


def test_serving_table_divides_eager_by_onnx_runtime(tiny):
    entry = _entry("FM", 1e6, 1e6, 1.0)
    entry["latency_ms"] = {"ours": {"1": 0.3, "4096": 8.0}, measure.ONNX_RUNTIME_IMPL: {"1": 0.1, "4096": 10.0}}
    text = _cells("\n".join(render._render_serving(_report({"fm": entry}, {}))))
    assert "| FM | 0.300 | 0.100 | 3.00x | 8.00 | 10.00 | 0.80x |" in text
    del entry["latency_ms"][measure.ONNX_RUNTIME_IMPL]
    assert render._render_serving(_report({"fm": entry}, {})) == []


def test_peers_are_imported_lazily():
    libraries = ("torchfm", "deepctr_torch", "fuxictr")
    code = f"import benchmarks.speed, sys; print([m for m in {libraries} if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.parametrize("peer", (*peers.PEERS, *peers.ZOO_PEERS), ids=lambda p: f"{p.case}-{p.library}")
def test_installed_peers_build_and_score(tiny, peer):
    if not peers.installed()[peer.library]:
        pytest.skip(f"{peer.library} is not installed ({peers.INSTALL_HINT})")
    torch.manual_seed(0)
    model = peer.make(tiny.schema, speed_cases.ARCH)
    probabilities = measure.scores(model, peer.encode(tiny.val.x[:64], tiny.schema), peer.probabilities)
    assert probabilities.shape == (64,) and ((probabilities >= 0) & (probabilities <= 1)).all()


# ---- the levers of fit ------------------------------------------------------------------------------------


def test_levers_keep_fit_deterministic(tiny):
    def run(**levers):
        torch.manual_seed(0)
        return fit(models.build("deepfm", tiny.schema), tiny, max_epochs=1, seed=3, **levers)

    fused, loop = run(), run(fused_adam=False)
    again = run()
    drop_timing = [{k: v for k, v in h.items() if k != "train_seconds"} for h in fused.history]
    assert drop_timing == [{k: v for k, v in h.items() if k != "train_seconds"} for h in again.history]
    assert torch.equal(fused.predictions["test"], again.predictions["test"])  # bit-identical with the default levers
    assert fused.best_val_auc == pytest.approx(loop.best_val_auc, abs=2e-3)  # same algorithm, another kernel
    assert run(precision="bf16").best_val_auc == pytest.approx(fused.best_val_auc, abs=0.02)


def test_precision_is_checked(tiny):
    model = models.build("lr", tiny.schema)
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16'\], got 'fp16'"):
        fit(model, tiny, precision="fp16")
    assert predict(model, tiny.val, precision="bf16").dtype == torch.float32


def test_non_finite_loss_names_the_step_where_it_appeared(tiny):
    class LateNaN(torch.nn.Module):  # finite for one step, then NaN
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.calls = 0

        def forward(self, x):
            self.calls += self.training
            return self.w * torch.ones(len(x)) + (float("nan") if self.calls > 1 else 0.0)

    with pytest.raises(NonFiniteLossError, match="late: training loss is nan at epoch 1, step 2"):
        fit(LateNaN(), tiny, eval_every=5, name="late")


def test_retain_memory_lever_switches_malloc_only_when_asked(tiny, monkeypatch):
    import benchmarks.engine.fit as engine_fit

    calls = []
    monkeypatch.setattr(engine_fit, "retain_freed_memory", lambda: calls.append(1) or True)
    for retain in (False, True):
        torch.manual_seed(0)
        fit(models.build("lr", tiny.schema), tiny, max_epochs=1, retain_memory=retain)
    assert calls == [1]


# ---- probe, levers, compile lever and bf16 parity, at tiny sizes ---------------------------------------------


def test_probe_timings_and_memory_of_one_implementation():
    timed = workers.probe("fm", 0, threads=1, mode="retain", steps=2)
    assert set(timed) == {"step_ms", "forward_4096_ms"} and min(timed.values()) > 0
    memory = workers.probe("fm", 0, threads=1, mode="memory")
    if "error" in memory:
        assert "clear_refs" in memory["error"]
    else:
        params = sum(p.numel() for p in models.build("fm", data.load("synthetic", rows=100).schema,
                                                     **speed_cases.CASES["fm"].hparams).parameters())
        assert memory["state_mib"] == pytest.approx(3 * 4 * params / 2**20)
        assert memory["train_peak_mib"] >= memory["state_mib"]


def test_run_probe_reports_a_failing_child_as_an_error():
    assert "KeyError" in workers.run_probe("no_such_case", 0, 1, "retain")["error"]


def test_every_lever_is_timed_on_and_off(tiny, monkeypatch):
    steps = []
    real_step = levers.train_step
    monkeypatch.setattr(levers, "train_step", lambda *a, **kw: steps.append(type(a[2])) or real_step(*a, **kw))
    s = speed_cases.Settings(rounds=1, lever_steps=1, compile_cases=(), batch_size=64)
    torch_threads = torch.get_num_threads()
    rows = levers.measure_levers(tiny, s, ["fm"], log=lambda _: None)
    assert [r["lever"] for r in rows] == [
        "Adam implementation", "Adam implementation", "bf16 autocast (training)", "bf16 autocast (forward 4096)",
        "flush denormals", "1 thread instead of 2", levers.VALUES_LEVER, "evaluation batch size"]
    assert all(r["speedup"] == pytest.approx(r["off_ms"] / r["on_ms"]) and r["on_ms"] > 0 for r in rows)
    assert torch.Tensor in steps and data.Features in steps  # the engine's step, also on indices with values
    assert torch.get_num_threads() == torch_threads  # the thread lever puts the count back


def test_compile_lever_times_eager_and_compiled(tiny):
    x, y = tiny.train.x[:64], tiny.train.y[:64]
    s = speed_cases.Settings(rounds=1)

    def fresh(case):
        torch.manual_seed(0)
        return models.build("lr", tiny.schema)

    (row,) = levers._compile_lever("fm", fresh, x, y, s, 1, log=lambda _: None)
    assert (row["off"], row["on"]) == ("eager", "torch.compile") and row["note"].startswith("compile time ")
    assert row["speedup"] == pytest.approx(row["off_ms"] / row["on_ms"])


def test_bf16_parity_runs_fit_both_ways_per_seed(tiny):
    s = speed_cases.Settings(epochs=1, parity_seeds=2, batch_size=512)
    (row,) = levers.bf16_parity(tiny, s, ["deepfm"], log=lambda _: None)
    assert row["case"] == "deepfm" and len(row["fp32_auc"]) == len(row["bf16_auc"]) == 2
    assert row["fp32_auc"][0] != row["fp32_auc"][1]  # one run per seed
    assert row["bf16_auc"] == pytest.approx(row["fp32_auc"], abs=0.03)
    assert min(row["fp32_samples_per_s"], row["bf16_samples_per_s"]) > 0


def test_bare_loop_trains_with_the_engine_step(tiny, monkeypatch):
    calls = []
    real_step = measure.train_step
    monkeypatch.setattr(measure, "train_step", lambda *a, **kw: calls.append(kw) or real_step(*a, **kw))
    torch.manual_seed(0)
    model = models.build("lr", tiny.schema)
    measure.bare_loop(model, tiny.train.x, tiny.train.y, epochs=1, batch_size=1000, seed=0)
    assert len(calls) == 3 and calls[0] == {"probabilities": False}  # 2400 rows in batches of 1000


def _task_runner(shared_answers):
    """A task runner whose n-th call reports the CPU shared as ``shared_answers[n]`` says (the last one after)."""
    calls = []

    def run(task):
        calls.append(task)
        shared = shared_answers[min(len(calls), len(shared_answers)) - 1]
        return {"seconds": 1.0 + len(calls), "val_auc": 0.7, "ms": 1.0 + len(calls),
                "contention": {"shared": shared, "others": 0.6 if shared else 0.0, "load": [0.5, 3.5]}}

    return run, calls


def test_a_task_timed_on_a_shared_cpu_is_timed_again_then_kept_and_marked():
    run, calls = _task_runner([True, False])
    lines = []
    result = measure.unshared(run, {"kind": "train"}, lines.append)
    assert len(calls) == 2 and not result["contention"]["shared"]
    assert "others took 60% of the machine" in lines[0] and "timing it again" in lines[0]
    run, calls = _task_runner([True])
    result = measure.unshared(run, {"kind": "train"}, lines.append)
    assert len(calls) == measure.SHARED_RETRIES + 1 and result["contention"]["shared"]
    assert lines[-1].endswith("kept and marked")


def test_execute_reports_whether_others_used_the_cpu_during_the_task(tiny, monkeypatch):
    task = {"kind": "latency", "case": "fm", "impl": 0, "batch": 8}
    quiet = measure.execute(task, tiny, speed_cases.QUICK, {})
    assert quiet["ms"] > 0 and set(quiet["contention"]) >= {"shared", "others", "load"}
    monkeypatch.setattr(os, "getloadavg", lambda: (os.cpu_count() + 2.0, 0.0, 0.0))
    assert measure.execute(task, tiny, speed_cases.QUICK, {})["contention"]["shared"]


def test_each_round_is_kept_and_the_best_one_says_whether_it_was_shared(tiny):
    impls = measure.implementations("fm", tiny.schema, {})
    settings = speed_cases.Settings(rows=3_000, rounds=2, latency_repeats=1)
    calls = {"fit": 0, "bare": 0, "latency": 0}

    def timed(task):  # fit: shared (and fast) from its second call on; bare never; latency always
        kind = task.get("how", "latency")
        calls[kind] += 1
        shared = kind == "latency" or (kind == "fit" and calls["fit"] > 1)
        return {"seconds": 0.5 if shared else 2.0, "val_auc": 0.7, "ms": 1.0,
                "contention": {"shared": shared, "others": 0.6, "load": [0.5, 0.5]}}

    training, latency, shared_latency = measure.measure_case("fm", impls, timed, timed, settings, 1000,
                                                             lambda _: None)
    fit_run, bare_run = training["ours: fit"], training["ours: bare loop"]
    assert fit_run["rounds"] == [500.0, 2000.0] and fit_run["samples_per_s"] == 2000.0 and fit_run["shared"]
    assert bare_run["rounds"] == [500.0, 500.0] and not bare_run["shared"]
    assert calls["fit"] == 1 + 1 + measure.SHARED_RETRIES  # round 1 once, round 2 with its retries
    assert shared_latency == sorted(f"{name}, batch {b}" for name in latency for b in (1, 4096))


class _Crash(Exception):
    pass


def test_a_stopped_run_resumes_from_its_checkpoint_and_only_with_the_same_code_and_settings(tmp_path, monkeypatch):
    commit = {"git_commit": "abc1234567"}
    measured_here = speed_main.environment
    monkeypatch.setattr(speed_main, "environment", lambda threads: measured_here(threads) | commit)
    monkeypatch.setattr(speed_main, "matmul_rate", lambda dtype: 100.0)
    settings = speed_cases.Settings(rows=3_000, rounds=1, latency_repeats=1, peers=False, memory=False, levers=False,
                                    quality_epochs=2)
    checkpoint = tmp_path / "speed.partial.json"

    def crash_at_ffm(line):
        if line.startswith("ffm:"):
            raise _Crash

    with pytest.raises(_Crash):
        speed_main.run(settings, ["fm", "ffm"], log=crash_at_ffm, checkpoint=checkpoint)
    saved = json.loads(checkpoint.read_text())
    assert list(saved["cases"]) == ["fm"] and saved["seconds"] > 0
    lines = []
    report = speed_main.run(settings, ["fm", "ffm"], log=lines.append, checkpoint=checkpoint)
    assert any("resuming, 1 famil(ies) already measured" in line for line in lines)
    assert f"fm: resumed from {checkpoint}" in lines
    assert report["cases"]["fm"]["training"] == saved["cases"]["fm"]["training"]  # not measured again
    assert set(report["cases"]) == {"fm", "ffm"} and report["resumed"] == 1 and report["seconds"] > saved["seconds"]
    assert "(resumed 1 time(s) from its checkpoint)" in render.render(report)

    fresh = {**saved, "cases": {}}
    for changed in ({"git_commit": "def7654321"}, {"git_commit": "abc1234567+dirty"}, {"threads": 1}):
        lines.clear()
        other = {**fresh, "environment": fresh["environment"] | changed}
        assert speed_main.resume(other, checkpoint, lines.append) is other and "starting afresh" in lines[0]
    assert speed_main.resume({**fresh, "settings": fresh["settings"] | {"rounds": 3}}, checkpoint,
                             lines.append)["cases"] == {}
    checkpoint.write_text('{"cases": {"fm"')
    lines.clear()
    assert speed_main.resume(fresh, checkpoint, lines.append) is fresh
    assert (tmp_path / "speed.partial.json.damaged").read_text() == '{"cases": {"fm"'
    assert "cannot be read" in lines[0] and "set aside" in lines[0] and not checkpoint.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--rounds", "0"], "argument --rounds: expected a whole number of at least 1, got '0'"),
    (["--epochs", "two"], "argument --epochs: expected a whole number of at least 1, got 'two'"),
    (["--cases", "fm,gbdt"], "unknown case(s) ['gbdt']; available:"),
])
def test_bad_flags_are_refused_in_one_line_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        speed_main.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
