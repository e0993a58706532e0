import json
import math
import re

import pytest
import torch

import models
from benchmarks.engine import spectrum
from benchmarks.harness.config import DEFAULT_CONFIG, STUDY_CONFIG, load_config
from benchmarks.reports.study import render_study


def _cells(markdown: str) -> str:
    """Tables with tabulate's column padding removed, so rows compare cell by cell."""
    return re.sub(r" *\| *", " | ", markdown)


def _matrix_with_spectrum(s):
    q1, _ = torch.linalg.qr(torch.randn(len(s), len(s), generator=torch.Generator().manual_seed(0)))
    q2, _ = torch.linalg.qr(torch.randn(len(s), len(s), generator=torch.Generator().manual_seed(1)))
    return q1 @ torch.diag(torch.tensor(s)) @ q2.T


def test_spectrum_of_a_known_matrix():
    s = [4.0, 2.0, 1.0, 1.0]
    found = spectrum.singular_values(_matrix_with_spectrum(s))
    torch.testing.assert_close(found, torch.tensor(s, dtype=torch.float64), atol=1e-5, rtol=0)
    assert spectrum.energy_share(found, 1) == pytest.approx(16 / 22)
    assert spectrum.energy_share(found, 4) == pytest.approx(1.0)
    assert spectrum.min_max(found).tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0], abs=1e-6)
    assert spectrum.effective_rank(torch.ones(10)) == pytest.approx(10.0)
    p = torch.tensor(s) / sum(s)
    assert spectrum.effective_rank(torch.tensor(s)) == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_truncation_keeps_the_top_singular_values():
    w = _matrix_with_spectrum([5.0, 3.0, 2.0, 0.5])
    torch.testing.assert_close(spectrum.truncate(w, 4), w, atol=1e-5, rtol=0)
    low = spectrum.truncate(w, 2)
    assert torch.linalg.matrix_rank(low) == 2
    torch.testing.assert_close(spectrum.singular_values(low)[:2], torch.tensor([5.0, 3.0], dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_truncation_at_full_rank_changes_nothing(small):
    torch.manual_seed(0)
    model = models.build("dcn_v2", small.schema, num_layers=2)
    init = spectrum.snapshot(model)
    result = spectrum.analyze(model, init, small, ranks=(8, 160))
    aucs = result["truncated_val_auc"]
    assert aucs["160"] == pytest.approx(aucs["full"], abs=1e-6)
    assert len(result["layers"]) == 2
    assert result["layers"][0]["init"]["singular_values"] == result["layers"][0]["learned"]["singular_values"]
    assert torch.equal(model.cross_net.cross_weights()[0], init[0])  # weights restored after truncating
    assert spectrum.snapshot(models.build("dcn_mix", small.schema)) is None


def test_study_config_grid_has_the_eight_cells():
    study = load_config(STUDY_CONFIG)
    cells = {(e.hparams["num_layers"], e.hparams["combine"]) for e in study.group("grid")}
    assert cells == {(d, c) for d in (1, 2, 3, 4) for c in ("parallel", "stacked")}
    assert len(study.group("ablation")) == 20 and len(study.group("form")) == 4
    assert study.train == load_config(DEFAULT_CONFIG).train  # comparable with the leaderboard


def _fake(experiment, entry, seed, auc, spectrum=None):
    key = experiment.key(entry, seed, threads=2)
    return {
        "label": entry.label, "status": "ok", "key": key,
        "dataset": {"name": "synthetic", "variant": "synthetic", "options": {}, "oracle": None,
                    "info": {"rows": {"train": 8, "val": 1, "test": 1}}},
        "environment": {"created": "2026-01-01", "git_commit": "abc", "cpu": "cpu", "torch": "2.x"},
        "metrics": {"val_auc": auc, "val_logloss": 0.6, "test_auc": auc - 0.01, "test_logloss": 0.6},
        "params": models.count_parameters(models.build(entry.model, _schema(), **entry.hparams)),
        "latency": {"1": {"median_ms": 0.1}, "4096": {"median_ms": 3.0}},
        "train_samples_per_second": 1.0, "best_epoch": 1.0, "spectrum": spectrum,
    }


def _schema():
    from data import Field, Schema
    return Schema([Field(f"f{i}", v) for i, v in enumerate([7, 2, 6, 5, 8, 12, 5, 12, 9, 6])])


def test_study_renders_from_hand_made_records(tmp_path):
    comparison, study = load_config(DEFAULT_CONFIG), load_config(STUDY_CONFIG)
    spectrum = {"ranks": [16], "layers": [{"init": {"singular_values": [3.0, 2.0, 1.0],
                                                    "energy_share": {"16": 0.3}, "effective_rank": 100.0},
                                           "learned": {"singular_values": [5.0, 1.0, 0.5],
                                                       "energy_share": {"16": 0.6}, "effective_rank": 40.0}}],
                "truncated_val_auc": {"full": 0.75, "16": 0.74}}
    records = {}  # one record per key, as on disk: the study's cells share the comparison's records
    for seed in range(3):
        for e in comparison.entries:
            r = _fake(comparison, e, seed, 0.70 + 0.001 * seed, spectrum if e.model == "dcn_v2" else None)
            records[json.dumps(r["key"], sort_keys=True)] = r
        for e in study.entries:
            bonus = 0.02 if e.hparams["combine"] == "parallel" else 0.0
            r = _fake(study, e, seed, 0.70 + bonus + 0.001 * seed)
            records[json.dumps(r["key"], sort_keys=True)] = r
    shared_only = _fake(comparison, comparison.entries[-1], 0, 0.7)  # a preset the grid shares, elsewhere
    shared_only["dataset"] = shared_only["dataset"] | {"name": "other", "variant": "other"}
    shared_only["key"] = shared_only["key"] | {"dataset": "other"}
    md = _cells(render_study(list(records.values()) + [shared_only], comparison, study, tmp_path))
    assert "## other" not in md and "Not run here (only the leaderboard's records): other;" in md
    assert "| 1 | 0.7210 ± 0.0010 (test 0.7110 ± 0.0010) | 0.6345" in md
    assert "| DCN-V2 parallel, 3 layers | 0.7010 ± 0.0010" in md and "| 110,017 | 110,017" in md
    assert "NO" not in md.split("### All families")[1].split("###")[0]
    assert "| W_1 | 0.300 → 0.600 | 100.0 → 40.0 |" in md
    assert "| rank 16 | 0.7400 ± 0.0000 | -0.0100 ± 0.0000 |" in md
    assert "parallel is higher at 4 of 4 depths, significantly so at 4" in md
    assert "with 49.5% of the parameters" in md
    assert "hold 30.0% of the energy at initialisation and 60.0% after training" in md
    assert (tmp_path / "synthetic_ablation_auc_vs_params.png").exists()
    assert list(tmp_path.glob("synthetic_spectrum_*.png"))


def test_study_command_end_to_end(tmp_path):
    from benchmarks.run import main

    wanted = "DCN-V2 parallel, 3 layers;DCN-Mix parallel, 1 layer(s);DCN-Mix stacked, 1 layer(s)"
    assert main(["--study", "--quick", "--models", wanted, "--out", str(tmp_path), "--quiet"]) == 0
    md = _cells((tmp_path / "quick" / "study.md").read_text())
    assert "| 1 | 0.6" in md and "| 2 | not run" in md
    assert "### Low rank: singular values of the cross matrices of DCN-V2 parallel, 3 layers" in md
    assert "- **Parallel vs stacked.**" in md and "- **DCN-Mix vs DCN-V2.**" in md
    assert len(list((tmp_path / "quick" / "records").rglob("*.json"))) == 3
    assert main(["--study", "--leaderboard", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    assert _cells((tmp_path / "quick" / "study.md").read_text()) == md
