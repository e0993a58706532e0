import math

import numpy as np
import pytest
from scipy import stats as sps

from benchmarks.harness.predictions import write_predictions
from benchmarks.harness.records import record_key, record_path
from benchmarks.reports import significance, stats
from benchmarks.reports.quality_plots import learning_curve_plot, reliability_plot


def _runs(tmp_path, label, probs, y, stored=True):
    """Records of one entry, one per seed, with their test predictions written beside them."""
    runs = []
    for seed, p in enumerate(probs):
        key = record_key(dataset="toy", dataset_options={}, model="lr", hparams={"label": label}, train={},
                         seed=seed, threads=1)
        if stored:
            write_predictions(record_path(tmp_path, key), {"test": (y, p)})
        runs.append({"label": label, "key": key, "status": "ok",
                     "metrics": {"test_auc": stats.delong(y, p)[0][0]}})
    return runs


def _family(rng, y, shift, seeds=3):
    latent = rng.normal(size=len(y))
    return [1 / (1 + np.exp(-(latent + y * shift + 0.5 * rng.normal(size=len(y))))) for _ in range(seeds)]


def test_interval_from_stored_predictions_and_seed_only_fallback(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    probs = _family(rng, y, 1.0)
    runs = _runs(tmp_path, "A", probs, y)
    predictions = significance.row_predictions(tmp_path, runs, "test")
    np.testing.assert_array_equal(predictions[0], y)
    found = significance.row_interval(runs, predictions, "test")
    expected = stats.mean_auc_interval(y, np.stack(probs).astype(np.float32))
    assert found["low"] == pytest.approx(expected["low"]) and found["basis"] == "seeds+test"
    aucs = np.array([r["metrics"]["test_auc"] for r in runs])
    seeds_only = significance.row_interval(runs, None, "test")
    half = sps.t.ppf(0.975, 2) * aucs.std(ddof=1) / math.sqrt(3)
    assert seeds_only["high"] - seeds_only["mean"] == pytest.approx(half) and seeds_only["basis"] == "seeds"
    assert significance.interval_text(seeds_only).endswith("]*")
    assert significance.row_interval(runs[:1], None, "test")["low"] == runs[0]["metrics"]["test_auc"]
    assert significance.row_interval([{"status": "failed"}], None, "test") is None


def test_missing_or_inconsistent_predictions(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(200) % 2
    runs = _runs(tmp_path, "A", _family(rng, y, 1.0), y)
    unstored = _runs(tmp_path, "B", _family(rng, y, 1.0, seeds=1), y, stored=False)
    assert significance.row_predictions(tmp_path, runs + unstored, "test") is None
    other = _runs(tmp_path, "C", _family(rng, y, 1.0, seeds=1), y[::-1].copy())
    with pytest.raises(ValueError, match="stored test labels differ between seeds of 'A'"):
        significance.row_predictions(tmp_path, runs + other, "test")


def test_paired_marks_skip_rows_without_predictions_and_demand_one_test_set():
    rng = np.random.default_rng(2)
    y = np.arange(2000) % 2
    rows = {"strong": (y, np.stack(_family(rng, y, 1.0))), "weak": (y, np.stack(_family(rng, y, 0.5))),
            "old": None}
    marks = significance.paired_marks(rows)
    assert marks["old"] is None and marks["strong"]["best"] and not marks["weak"]["close"]
    with pytest.raises(ValueError, match="rows 'strong' and 'weak' were scored on different rows"):
        significance.paired_marks({"strong": rows["strong"], "weak": (y[::-1].copy(), rows["weak"][1])})
    assert significance.paired_marks({"old": None}) == {"old": None}


def test_quality_plots_are_written(tmp_path):
    rng = np.random.default_rng(3)
    y = np.arange(500) % 2
    name = reliability_plot({"A": (y, np.stack(_family(rng, y, 1.0)))}, tmp_path, "toy")
    history = [{"train_seconds": s, "val_auc": a} for s, a in [(0.5, 0.6), (1.0, 0.7), (2.0, 0.72)]]
    curve = learning_curve_plot({"A": history}, tmp_path, "toy")
    assert (name, curve) == ("toy_reliability.png", "toy_val_auc_vs_seconds.png")
    assert (tmp_path / name).stat().st_size > 0 and (tmp_path / curve).stat().st_size > 0



def _section(tmp_path, probs, y, options):
    """One section of data set "toy" (loader options after defaults: ``options``): a DNN row with its predictions."""
    runs = []
    for seed, p in enumerate(probs):
        key = record_key(dataset="toy", dataset_options=options, model="dnn", hparams={}, train={}, seed=seed,
                         threads=1)
        write_predictions(record_path(tmp_path, key), {"test": (y, p)})
        runs.append({"label": "DNN", "key": key, "status": "ok", "metrics": {"test_auc": stats.delong(y, p)[0][0]},
                     "dataset": {"name": "toy", "info": {"options": options}}})
    return {"DNN": runs}


def test_values_vs_bins_pairs_sections_and_tests_the_paired_difference(tmp_path):
    from benchmarks.reports import values

    rng = np.random.default_rng(1)
    y = np.arange(600) % 2
    with_values, with_bins = _family(rng, y, 2.0), _family(rng, y, 0.5)
    sections = {"toy": _section(tmp_path, with_values, y, {"seed": 0, "numeric_as": "value"}),
                "toy-b": _section(tmp_path, with_bins, y, {"seed": 0, "numeric_as": "bins"}),
                "toy-other": _section(tmp_path, with_bins, y, {"seed": 1, "numeric_as": "bins"}),
                "toy-age": _section(tmp_path, with_values, y, {"seed": 0, "numeric_as": {"age": "value"}})}
    # a per-column mapping keeping a value pairs too; another split seed is another data set: not paired
    assert values.pairs(sections) == [("toy", "toy-b"), ("toy-age", "toy-b")]
    lines = values.values_sections({k: sections[k] for k in ("toy", "toy-b")}, tmp_path)
    row = next(line for line in "\n".join(lines).splitlines() if line.startswith("| DNN"))
    expected = stats.compare_mean_aucs(y, with_values, with_bins, alternative="two-sided")
    assert expected["diff"] > 0.1 and f"{expected['diff']:+.4f}" in row
    assert values.values_sections({"toy": sections["toy"]}, tmp_path) == []
