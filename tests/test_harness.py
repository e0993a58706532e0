import importlib.util
import json
from dataclasses import replace

import pytest
import torch

import benchmarks.harness.sweep as sweep
import data
from benchmarks.engine.metrics import evaluate
from benchmarks.harness.config import ConfigError, load_config, parse_config
from benchmarks.harness.records import (
    REQUIRED,
    load_records,
    read_record,
    record_key,
    record_path,
    weights_path,
    write_record,
)
from benchmarks.harness.sweep import run_experiment
from benchmarks.reports.common import select_runs, summarize
from benchmarks.reports.leaderboard import render
from benchmarks.run import main

TINY = {
    "dataset": {"name": "synthetic", "options": {"rows": 2000}},
    "run": {"seeds": [0, 1]},
    "train": {"max_epochs": 1, "batch_size": 256},
    "latency": {"batch_sizes": [1, 8]},
    "model": [{"name": "lr"}, {"label": "FM small", "name": "fm", "hparams": {"embed_dim": 2}}],
}


def test_default_config_has_every_family_and_the_study_variants():
    exp = load_config()
    assert {e.model for e in exp.entries} >= {"lr", "fm", "ffm", "pnn", "deepfm", "nfm", "dcn_v2", "dcn_mix"}
    labels = [e.label for e in exp.entries]
    for label in ["DCN-V2 parallel, 3 layers", "DCN-V2 stacked, 3 layers", "DCN-Mix parallel, 1 layer",
                  "DCN-Mix stacked, 3 layers"]:
        assert label in labels
    assert len(exp.seeds) >= 3 and exp.dataset == "synthetic"


@pytest.mark.parametrize("model, message", [
    ({"name": "xgboost"}, r"model entry 'xgboost': .*unknown model 'xgboost'.*fm"),
    ({"label": "bad FM", "name": "fm", "hparams": {"embed_size": 4}}, r"model entry 'bad FM': .*embed_size"),
    ({"label": "bad DCN", "name": "dcn_v2", "hparams": {"combine": "diagonal"}},
     r"model entry 'bad DCN': .*diagonal"),
    ({"preset": "DCN-V3"}, r"\[\[model\]\] #1: .*DCN-V3"),
    ({"label": "x"}, r"\[\[model\]\] #1: needs 'name'"),
    ({"name": "fm", "train": {"learning_rate": 1}},
     r"model entry 'fm' train: unknown key 'learning_rate'; accepted: \['batch_size', "),
    ({"name": "fm", "colour": "red"}, r"\[\[model\]\] #1: unknown key\(s\) \['colour'\]"),
])
def test_config_errors_name_the_entry(model, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"model": [model]}, source="t.toml")


def test_config_errors_at_top_level(tmp_path):
    with pytest.raises(ConfigError, match=r"\[train\]: unknown key 'epochs'; accepted: \['batch_size'"):
        parse_config({"train": {"epochs": 3}, "model": [{"name": "fm"}]})
    with pytest.raises(ConfigError, match=r"duplicated: \['fm'\]"):
        parse_config({"model": [{"name": "fm"}, {"name": "fm"}]})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    assert [e.label for e in parse_config(TINY).select(["fm", "nope"]).entries] == ["FM small"]


def test_record_hash_is_stable_and_sensitive(tmp_path):
    base = dict(dataset="synthetic", dataset_options={}, model="fm", hparams={"embed_dim": 4},
                train={"lr": 0.001}, seed=0, threads=2)
    same = record_path(tmp_path, record_key(**base))
    assert same == record_path(tmp_path, record_key(**dict(base, hparams={"embed_dim": 4})))
    for change in [{"seed": 1}, {"hparams": {"embed_dim": 8}}, {"train": {"lr": 0.01}}, {"threads": 1},
                   {"dataset_options": {"rows": 10}}, {"model": "ffm"}]:
        assert record_path(tmp_path, record_key(**(base | change))) != same


def test_write_record_is_atomic(tmp_path):
    path = tmp_path / "records" / "d" / "r.json"
    record = {k: 1 for k in REQUIRED}
    write_record(path, record)
    with pytest.raises(TypeError):
        write_record(path, record | {"a": object()})
    assert read_record(path) == record
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def _snapshot(out):
    return {p: (p.read_text(), p.stat().st_mtime_ns) for p in sorted((out / "records").rglob("*.json"))}


def test_sweep_resumes_after_interruption(tmp_path, interrupter):
    exp = parse_config(TINY)
    interrupter.arm(3)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, tmp_path, threads=1)
    before = _snapshot(tmp_path)
    assert len(before) == 2
    interrupter.disarm()
    summary = run_experiment(exp, tmp_path, threads=1)
    assert (summary.ran, summary.reused, summary.failed) == (2, 2, 0)
    after = _snapshot(tmp_path)
    assert len(after) == 4 and all(after[p] == before[p] for p in before)
    again = run_experiment(exp, tmp_path, threads=1)
    assert (again.ran, again.reused) == (0, 4)
    assert _snapshot(tmp_path) == after
    forced = run_experiment(exp.select(["lr"]), tmp_path, threads=1, force=True)
    assert forced.ran == 2


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    exp = parse_config(TINY)
    real_build = sweep.models.build

    def broken_fm(name, schema, **hp):
        if name == "fm":
            raise RuntimeError("out of memory (simulated)")
        return real_build(name, schema, **hp)

    monkeypatch.setattr(sweep.models, "build", broken_fm)
    summary = run_experiment(exp, tmp_path, threads=1)
    assert (summary.ran, summary.failed) == (4, 2)
    assert summary.errors[0] == "FM small, seed 0: RuntimeError: out of memory (simulated)"
    records = load_records(tmp_path)
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 2 and "out of memory" in failed[0]["traceback"]
    md = render(records, exp, tmp_path)
    assert "FM small (FAILED 2/2)" in md and "RuntimeError: out of memory (simulated)" in md
    monkeypatch.setattr(sweep.models, "build", real_build)
    assert run_experiment(exp, tmp_path, threads=1).ran == 2


HAND = parse_config({"dataset": {"name": "toy"},
                     "model": [{"name": "lr", "label": label, "hparams": {}, "train": {"lr": lr}}
                               for label, lr in [("A", 0.1), ("B", 0.2), ("C", 0.3), ("D", 0.4)]]})


def _record(label, seed, test_auc, status="ok", created="2026-01-01T00:00:00", threads=2):
    entry = next(e for e in HAND.entries if e.label == label)
    rec = {
        "label": label, "status": status, "key": HAND.key(entry, seed, threads),
        "dataset": {"name": "toy", "variant": "toy", "options": {}, "oracle": None,
                    "info": {"rows": {"train": 8, "val": 1, "test": 1}, "split_rule": "hand-made"}},
        "environment": {"created": created, "git_commit": "abc", "cpu": "test cpu", "torch": "2.x"},
    }
    if status != "ok":
        return rec | {"error": "ValueError: broken"}
    return rec | {
        "metrics": {"val_auc": test_auc, "val_logloss": 0.6, "test_auc": test_auc, "test_logloss": 0.6},
        "params": 100, "latency": {"1": {"median_ms": 0.1}, "4096": {"median_ms": 2.0}},
        "train_samples_per_second": 1000.0, "best_epoch": 2.0,
    }


def test_leaderboard_from_hand_made_records(tmp_path):
    records = [_record("A", s, v) for s, v in enumerate([0.70, 0.71, 0.72])]
    records += [_record("B", s, v) for s, v in enumerate([0.74, 0.75, 0.76])]
    records += [_record("C", s, v) for s, v in enumerate([0.745, 0.70, 0.78])]
    records += [_record("D", 0, 0.0, status="failed")]
    md = render(records, HAND, tmp_path)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "model" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["B", "C", "A", "D (1 of 3 seeds) (FAILED 1/1)"]
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in rows}
    # no stored predictions: seed-only intervals (t with 2 df: 4.303 * 0.01 / sqrt(3)) and Welch marks
    assert cells["B"][:3] == ["3", "0.7500 [0.7252, 0.7748]*", "≈"]
    assert cells["C"][2] == "≈" and cells["A"][2] == ""
    assert "one-sided Welch t-test over seeds (α = 0.05), which sees seed noise only" in md
    assert "ValueError: broken" in rows[-1]
    assert (tmp_path / "toy_auc_vs_params.png").stat().st_size > 0
    assert (tmp_path / "toy_auc_vs_latency.png").stat().st_size > 0


def test_selection_follows_the_config():
    old = [_record("A", s, 0.6, threads=1) for s in range(2)]
    new = [_record("A", s, 0.7, created="2026-02-01T00:00:00") for s in range(3)]
    stranger = _record("B", 0, 0.9)
    stranger["key"] = stranger["key"] | {"train": {"lr": 9.0}}
    runs = select_runs(old + new + [stranger], HAND)["toy"]
    assert list(runs) == ["A"]
    assert summarize("A", runs["A"])["test_auc"] == pytest.approx((0.7, 0.0))
    assert len(runs["A"]) == 3
    renamed = parse_config({"dataset": {"name": "toy"},
                            "model": [{"name": "lr", "label": "renamed", "train": {"lr": 0.1}}]})
    assert list(select_runs(new, renamed)["toy"]) == ["renamed"]


def test_grid_expands_to_every_cell():
    exp = parse_config({"grid": [{"name": "dcn_mix", "group": "grid", "label": "{combine}-{num_layers}",
                                  "hparams": {"rank": 8},
                                  "axes": {"num_layers": [1, 2, 3, 4], "combine": ["parallel", "stacked"]}}]})
    assert len(exp.entries) == 8 and len(exp.group("grid")) == 8
    assert exp.entries[1].label == "stacked-1"
    assert exp.entries[1].hparams.items() >= {"rank": 8, "num_layers": 1, "combine": "stacked"}.items()
    assert exp.entries[1].hparams["num_experts"] == 4  # defaults spelled out: equal models share records
    with pytest.raises(ConfigError, match=r"\[\[grid\]\] #1: label '\{depth\}' names 'depth'"):
        parse_config({"grid": [{"name": "fm", "label": "{depth}", "axes": {"embed_dim": [2]}}]})
    with pytest.raises(ConfigError, match="axes must map hyperparameter names to non-empty lists"):
        parse_config({"grid": [{"name": "fm", "axes": {"embed_dim": []}}]})


@pytest.mark.parametrize("text, message", [
    ('[train]\nseed = 1', r"\[train\]: unknown key 'seed' \(seeds go in \[run\] seeds\); accepted: \['batch_size'"),
    ('[train]\nprecision = "bf16"', r"\[train\]: unknown key 'precision' \(a speed lever: --precision on the command"),
    ('[train]\nlr = "fast"', r"\[train\] lr = 'fast'; accepted: a number > 0$"),
    ("[train]\nlr = 0", r"\[train\] lr = 0; accepted: a number > 0$"),
    ("[train]\nbatch_size = 2.5", r"\[train\] batch_size = 2.5; accepted: an integer >= 1$"),
    ("[train]\nmax_epochs = true", r"\[train\] max_epochs = True; accepted: an integer >= 1$"),
    ("[train]\npatience = 0", r"\[train\] patience = 0; accepted: an integer >= 1$"),
    ("[train]\nweight_decay = -1e-4", r"\[train\] weight_decay = -0.0001; accepted: a number >= 0$"),
    ("[run]\nseeds = [0, -1]", r"\[run\] seeds = \[0, -1\]; accepted: a non-empty list of integers >= 0"),
    ("[latency]\nbatch_sizes = [0]", r"\[latency\] batch_sizes = \[0\]; accepted: a non-empty list of integers >= 1"),
    ("[measure]\nspectrum = 1", r"\[measure\] spectrum = 1; accepted: true or false"),
    ("[measure]\nflops = true", r"\[measure\]: unknown key\(s\) \['flops'\]; accepted: \['serve', 'spectrum'\]"),
    ("[dataset]\nname = 3", r"\[dataset\] name = 3; accepted: a data set name"),
])
def test_every_value_is_checked_at_load(tmp_path, text, message):
    """The seam bug: [train] seed / precision loaded, then every run failed; now the load fails, in one line
    naming the file, the table, the key, the value and what is accepted."""
    path = tmp_path / "bad.toml"
    path.write_text(f'{text}\n\n[[model]]\nname = "lr"\n')
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_spectrum_is_measured_only_when_the_config_asks(tmp_path):
    base = parse_config(TINY).select(["lr"])
    dcn = parse_config({**TINY, "model": [{"name": "dcn_v2", "hparams": {"num_layers": 1}}]})
    run_experiment(replace(dcn, seeds=(0,)), tmp_path / "off", threads=1)
    assert "spectrum" not in load_records(tmp_path / "off")[0]
    on = replace(dcn, seeds=(0,), measure=frozenset({"spectrum"}))
    assert run_experiment(on, tmp_path / "off", threads=1).ran == 1  # the record lacks it: rerun
    record = load_records(tmp_path / "off")[0]
    assert record["spectrum"]["ranks"] and len(record["spectrum"]["layers"]) == 1
    assert run_experiment(on, tmp_path / "off", threads=1).reused == 1
    run_experiment(replace(base, seeds=(0,), measure=frozenset({"spectrum"})), tmp_path / "lr", threads=1)
    assert load_records(tmp_path / "lr")[0]["spectrum"] is None  # nothing to measure in LR


def test_serve_keeps_first_seed_weights_and_times_onnx_runtime(tmp_path):
    from benchmarks import export
    from benchmarks.reports.leaderboard import write_leaderboard

    experiment = replace(parse_config(TINY).select(["lr"]), seeds=(0, 1), measure=frozenset({"serve"}))
    run_experiment(experiment, tmp_path, threads=1)
    records = sorted(load_records(tmp_path), key=lambda r: r["key"]["seed"])
    assert records[1]["serve"] is None and not weights_path(record_path(tmp_path, records[1]["key"])).exists()
    kept = weights_path(record_path(tmp_path, records[0]["key"]))
    dataset = data.load(experiment.dataset, **experiment.dataset_options)
    rebuilt = export.model_from_record(records[0], dataset.schema, kept)
    with torch.inference_mode():  # the kept weights are the trained ones: they reproduce the recorded test AUC
        probabilities = torch.sigmoid(rebuilt(dataset.test.x))
    assert evaluate(dataset.test.y, probabilities)["auc"] == pytest.approx(records[0]["metrics"]["test_auc"], abs=1e-6)
    served = records[0]["serve"]
    if importlib.util.find_spec("onnxruntime") is None:
        assert served["skipped"].startswith("onnx/onnxruntime not installed")
        return
    assert served["max_abs_difference"] < 1e-4
    assert [t["batch_size"] for t in served["latency"]] == list(experiment.latency_batch_sizes)
    md = write_leaderboard(tmp_path, experiment).read_text()
    assert "ORT ms @ batch 1" in md and "ORT ms: the first seed's trained model" in md


def test_quick_end_to_end(tmp_path):
    assert main(["--quick", "--models", "lr,dcn_mix", "--out", str(tmp_path), "--quiet"]) == 0
    out = tmp_path / "quick"
    md = (out / "leaderboard.md").read_text()
    assert "oracle (true probabilities)" in md and "| LR" in md and "DCN-Mix parallel, 1 layer" in md
    assert len(list((out / "records").rglob("*.json"))) == 3
    assert "## synthetic (rows=20000)" in md
    assert list(out.glob("*_auc_vs_params.png"))
    record = json.loads(next((out / "records").rglob("lr-*.json")).read_text())
    assert record["key"]["dataset_options"] == {"rows": 20_000} and record["key"]["train"]["max_epochs"] == 2
    assert record["latency"]["4096"]["batch_size"] == 4096 and record["latency"]["4096"]["median_ms"] > 0
    assert main(["--leaderboard", "--quick", "--out", str(tmp_path), "--quiet"]) == 0


def test_cli_errors(capsys):
    assert main(["--models", "nope", "--quiet"]) == 2
    assert "no model entry matches ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])
    assert main(["--all", "--dataset", "nope", "--quiet"]) == 2
    assert "unknown data set 'nope'" in capsys.readouterr().err


def test_speed_levers_reach_fit_and_the_key(tmp_path, monkeypatch):
    exp = parse_config(TINY).select(["lr"])
    seen = []
    real_fit = sweep.fit
    monkeypatch.setattr(sweep, "fit", lambda *a, **kw: seen.append(kw) or real_fit(*a, **kw))
    run_experiment(replace(exp, seeds=(0,)), tmp_path, threads=1, levers={"fused_adam": False})
    assert seen[0]["fused_adam"] is False and seen[0]["precision"] == "fp32"
    record = load_records(tmp_path)[0]
    assert record["key"]["levers"] == {"fused_adam": False, "precision": "fp32", "retain_memory": True}
    md = render(load_records(tmp_path), exp, tmp_path)
    assert "**speed levers**: fused_adam=False, precision=fp32, retain_memory=True" in md
    with pytest.raises(ValueError, match=r"unknown speed lever\(s\) \['turbo'\]"):
        run_experiment(exp, tmp_path, threads=1, levers={"turbo": True})
