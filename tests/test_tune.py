import json

import numpy as np
import pytest

import models
from benchmarks.harness.cli import build_experiment, main, parse_args
from benchmarks.harness.config import ConfigError, load_config, parse_config
from benchmarks.harness.predictions import MAX_ROWS, predictions_path, read_predictions, write_predictions
from benchmarks.harness.records import load_records
from benchmarks.harness.sweep import run_experiment
from benchmarks.harness.tune import TUNE_CONFIG, load_tune_config, parse_tune_config, read_manifest, tune
from benchmarks.reports.common import select_runs
from benchmarks.reports.tuned import tuned_section

TINY = parse_config({
    "dataset": {"name": "synthetic", "options": {"rows": 2000}},
    "run": {"seeds": [0, 1]},
    "train": {"max_epochs": 1, "batch_size": 256},
    "latency": {"batch_sizes": [1]},
    "model": [{"name": "lr", "label": "LR"}, {"label": "FM", "name": "fm", "hparams": {"embed_dim": 2}}],
})
SPACE = {
    "tune": {"trials": 3, "seed": 0, "startup_trials": 1},
    "common": {"lr": {"low": 1e-3, "high": 3e-2, "log": True}},
    "family": {"lr": {"default": "LR"}, "fm": {"default": "FM", "embed_dim": {"choices": [2, 4]}}},
}


def test_shipped_tune_config_covers_every_default_family():
    default = load_config()
    config = load_tune_config(default, TUNE_CONFIG)
    solved = {e.model for e in default.entries if models.fitted_by_solver(e.model)}
    assert solved == {"lr_sklearn"}  # chooses its own regularisation on validation: not tuned
    assert {s.family for s in config.spaces} == {e.model for e in default.entries} - solved
    assert all({"lr", "weight_decay"} <= {p.name for p in s.params} for s in config.spaces)


@pytest.mark.parametrize("change, message", [
    ({"family": {"nope": {"default": "LR"}}}, r"\[family.nope\]: unknown family; registered"),
    ({"family": {"fm": {"default": "LR"}}}, r"default must name a fm entry of .*, got 'LR'"),
    ({"family": {"fm": {"default": "FM", "depth": {"choices": [1]}}}},
     r"'depth' is neither a training setting .* nor a hyperparameter of fm \['embed_dim'\]"),
    ({"family": {"fm": {"default": "FM", "embed_dim": {"choices": [0, 2]}}}}, r"\[family.fm\] \(low\): model entry"),
    ({"common": {"lr": {"low": 0.0, "high": 1.0, "log": True}}}, r"\[common\]: lr: need numbers low < high"),
    ({"common": {"lr": [1e-3, 1e-2]}}, r"lr must be \{ choices = \[...\] \} or"),
    ({"tune": {"trials": 0}}, r"\[tune\] takes integers trials >= 1"),
    ({"family": {}}, r"no \[family.<name>\] tables"),
])
def test_tune_config_errors_name_the_table(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_tune_config(SPACE | change, TINY, "tune.toml")


def test_tuning_runs_every_trial_as_a_record_resumes_and_reruns_the_winner(tmp_path, interrupter):
    config = parse_tune_config(SPACE, TINY)
    interrupter.arm(5)
    with pytest.raises(KeyboardInterrupt):
        tune(TINY, config, tmp_path, say=lambda *a: None, threads=1)
    first = {p.name for p in (tmp_path / "records").rglob("*.json")}
    interrupter.disarm()
    tune(TINY, config, tmp_path, say=lambda *a: None, threads=1)
    manifest = read_manifest(tmp_path, TINY)
    assert manifest["trials"] == 3 and set(manifest["families"]) == {"lr", "fm"}
    fm = manifest["families"]["fm"]
    assert [t["trial"] for t in fm["trials"]] == [0, 1, 2]
    assert fm["best"] == max(fm["trials"], key=lambda t: t["val_auc"])["trial"]
    records = {p.name for p in (tmp_path / "records").rglob("*.json")}
    assert first <= records  # the interrupted run's records were reused, not redone
    assert {t["record"] for f in manifest["families"].values() for t in f["trials"]} <= records
    best = fm["trials"][fm["best"]]
    reruns = [r for r in load_records(tmp_path) if r["key"]["hparams"] == best["hparams"]
              and r["key"]["train"]["lr"] == best["train"]["lr"]]
    assert sorted(r["key"]["seed"] for r in reruns) == [0, 1]
    again = json.dumps(read_manifest(tmp_path, TINY), sort_keys=True)
    interrupter.arm(1)  # a finished search trains nothing: the same proposals, all reused
    tune(TINY, config, tmp_path, say=lambda *a: None, threads=1)
    assert interrupter.calls == 0 and json.dumps(read_manifest(tmp_path, TINY), sort_keys=True) == again


def test_sampler_is_seeded(tmp_path):
    config = parse_tune_config(SPACE | {"family": {"lr": {"default": "LR"}}}, TINY)
    a = tune(TINY, config, tmp_path / "a", say=lambda *a: None, threads=1)
    b = tune(TINY, config, tmp_path / "b", say=lambda *a: None, threads=1)
    values = [[t["values"] for t in json.loads(p.read_text())["families"]["lr"]["trials"]] for p in (a, b)]
    assert values[0] == values[1] and len({v["lr"] for v in values[0]}) == 3


def test_predictions_round_trip_and_size_limit(tmp_path):
    record = tmp_path / "fm-seed0-abc.json"
    y, prob = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3])
    assert write_predictions(record, {"val": (y, prob), "test": (y[:3], prob[:3])}, max_rows=3) == ["test"]
    assert predictions_path(record).name == "fm-seed0-abc.preds.npz"
    assert read_predictions(record, "val") is None
    labels, stored = read_predictions(record, "test")
    assert labels.dtype == np.uint8 and stored.dtype == np.float32
    np.testing.assert_array_equal(labels, y[:3])
    np.testing.assert_allclose(stored, prob[:3], rtol=1e-7)
    assert read_predictions(tmp_path / "other.json", "test") is None
    assert write_predictions(tmp_path / "big.json", {"test": (y, prob)}, max_rows=2) == []
    assert not predictions_path(tmp_path / "big.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")] and MAX_ROWS >= 1_000_000
    with pytest.raises(ValueError, match=r"split 'val': labels \(4,\) and probabilities \(3,\)"):
        write_predictions(record, {"val": (y, prob[:3])})
    with pytest.raises(ValueError, match=r"split must be one of \['val', 'test'\], got 'train'"):
        read_predictions(record, "train")


def test_tuned_table_lists_each_family_with_its_choice_and_seeds(tmp_path):
    config = parse_tune_config(SPACE | {"tune": {"trials": 2, "startup_trials": 1}}, TINY)
    tune(TINY, config, tmp_path, say=lambda *a: None, threads=1)
    run_experiment(TINY.select(["FM"]), tmp_path, threads=1)
    records = load_records(tmp_path)
    variant = records[0]["dataset"]["variant"]
    defaults = select_runs(records, TINY)[variant]
    lines = tuned_section(records, TINY, tmp_path, variant, defaults)
    assert lines[0] == "### Tuned at equal budget (2 trials per family)"
    table = [line.split("|")[1:-1] for line in "\n".join(lines).splitlines() if "| " in line]
    rows = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in table}
    manifest = read_manifest(tmp_path, TINY)
    fm = manifest["families"]["fm"]["trials"][manifest["families"]["fm"]["best"]]["values"]
    assert rows["fm"][0] == f"embed_dim={fm['embed_dim']}, lr={fm['lr']:.3g}" and rows["fm"][1] == "2"
    assert rows["lr"][3] == "not run"  # no default LR runs here
    assert tuned_section(records, TINY, tmp_path / "elsewhere", variant, defaults) == []


def test_tune_command_end_to_end(tmp_path, capsys):
    assert main(["--quick", "--tune", "--trials", "1", "--models", "lr", "--out", str(tmp_path), "--quiet"]) == 0
    out = tmp_path / "quick"
    md = (out / "leaderboard.md").read_text()
    assert "### Tuned at equal budget (1 trials per family)" in md and "| lr " in md.split("### Tuned")[1]
    assert read_manifest(out, build_experiment(parse_args(["--quick", "--tune"]))) is not None
    with pytest.raises(SystemExit):
        main(["--all", "--trials", "3"])
    assert "--trials takes a count >= 1 and goes with --tune, got 3 without --tune" in capsys.readouterr().err
    assert main(["--tune", "--tune-config", str(tmp_path / "none.toml"), "--quiet"]) == 2
    assert f"tune config '{tmp_path / 'none.toml'}' does not exist" in capsys.readouterr().err
